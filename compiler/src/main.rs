//! The `mobilenetc` command; everything lives in [`mobilenetc::cli`].

fn main() {
    std::process::exit(mobilenetc::cli::main());
}
