//! The arguments of `include_model!`, parsed with syn; every mistake is a `syn::Error` spanned
//! on the offending token.
//!
//! ```text
//! include_model!(Name, "path/model.onnx" [, batch = N] [, threads = T] [, train = true])
//! include_model!(Name, mobilenet_v1(alpha = A, resolution = R, classes = K [, channels = C] [, seed = S]) [, batch = N] [, threads = T] [, train = true])
//! ```

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::{Ident, Lit, LitStr, Token};

#[derive(Clone, Debug, PartialEq)]
pub struct MobileNetArgs {
    pub alpha: f32,
    pub resolution: usize,
    pub classes: usize,
    pub channels: usize,
    pub seed: u64,
}

#[derive(Clone, Debug)]
pub enum Source {
    File(LitStr),
    /// The constructor's arguments and the span of `mobilenet_v1(..)` for its errors.
    MobileNet(MobileNetArgs, Span),
}

#[derive(Clone, Debug)]
pub struct ModelArgs {
    pub name: Ident,
    pub source: Source,
    /// The batch size and the span of its value.
    pub batch: Option<(usize, Span)>,
    /// `train = true`: also generate the training code (`<Name>Trainer`).
    pub train: bool,
    /// The default thread count of the generated model and the span of its value.
    pub threads: Option<(usize, Span)>,
}

impl ModelArgs {
    /// The call as written (normalized), recorded in the generated code's header.
    pub fn invocation(&self) -> String {
        let src = match &self.source {
            Source::File(p) => format!("{:?}", p.value()),
            Source::MobileNet(a, _) => format!(
                "mobilenet_v1(alpha = {:?}, resolution = {}, classes = {}, channels = {}, seed = {})",
                a.alpha, a.resolution, a.classes, a.channels, a.seed
            ),
        };
        let batch = self.batch.map(|(b, _)| format!(", batch = {b}")).unwrap_or_default();
        let threads = self.threads.map(|(t, _)| format!(", threads = {t}")).unwrap_or_default();
        let train = if self.train { ", train = true" } else { "" };
        format!("include_model!({}, {src}{batch}{threads}{train})", self.name)
    }
}

fn int<T: std::str::FromStr>(lit: &Lit, key: &str) -> syn::Result<T>
where
    T::Err: std::fmt::Display,
{
    match lit {
        Lit::Int(i) => i.base10_parse::<T>().map_err(|e| syn::Error::new(i.span(), format!("`{key}`: {e}"))),
        other => Err(syn::Error::new(other.span(), format!("`{key}` takes a whole number"))),
    }
}

fn positive(v: usize, lit: &Lit, key: &str) -> syn::Result<usize> {
    if v == 0 {
        return Err(syn::Error::new(lit.span(), format!("`{key}` must be at least 1")));
    }
    Ok(v)
}

fn parse_mobilenet(input: ParseStream, call: &Ident) -> syn::Result<MobileNetArgs> {
    let content;
    syn::parenthesized!(content in input);
    let (mut alpha, mut resolution, mut classes, mut channels, mut seed) = (None, None, None, None, None);
    while !content.is_empty() {
        let key: Ident = content.parse()?;
        content.parse::<Token![=]>()?;
        let lit: Lit = content.parse()?;
        let k = key.to_string();
        let seen = match k.as_str() {
            "alpha" => {
                let a: f32 = match &lit {
                    Lit::Float(f) => f.base10_parse()?,
                    Lit::Int(i) => i.base10_parse()?,
                    other => return Err(syn::Error::new(other.span(), "`alpha` takes a number such as 1.0, 0.75, 0.5 or 0.25")),
                };
                if !(a > 0.0 && a.is_finite()) {
                    return Err(syn::Error::new(lit.span(), "`alpha` must be a positive width multiplier"));
                }
                alpha.replace(a).is_some()
            }
            "resolution" => resolution.replace(positive(int(&lit, &k)?, &lit, &k)?).is_some(),
            "classes" => classes.replace(positive(int(&lit, &k)?, &lit, &k)?).is_some(),
            "channels" => channels.replace(positive(int(&lit, &k)?, &lit, &k)?).is_some(),
            "seed" => seed.replace(int::<u64>(&lit, &k)?).is_some(),
            _ => {
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown argument `{k}` of mobilenet_v1 (expected alpha, resolution, classes, channels or seed)"),
                ))
            }
        };
        if seen {
            return Err(syn::Error::new(key.span(), format!("`{k}` is given twice")));
        }
        if !content.is_empty() {
            content.parse::<Token![,]>()?;
        }
    }
    let missing: Vec<&str> = [("alpha", alpha.is_none()), ("resolution", resolution.is_none()), ("classes", classes.is_none())]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(k, _)| *k)
        .collect();
    if !missing.is_empty() {
        return Err(syn::Error::new(call.span(), format!("mobilenet_v1 needs {} (e.g. mobilenet_v1(alpha = 1.0, resolution = 32, classes = 10))", missing.join(", "))));
    }
    Ok(MobileNetArgs {
        alpha: alpha.unwrap_or(1.0),
        resolution: resolution.unwrap_or(224),
        classes: classes.unwrap_or(1000),
        channels: channels.unwrap_or(3),
        seed: seed.unwrap_or(0),
    })
}

impl Parse for ModelArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let usage = "usage: include_model!(Name, \"model.onnx\" [, batch = N] [, threads = T] [, train = true]) or include_model!(Name, mobilenet_v1(alpha = 1.0, resolution = 32, classes = 10) [, batch = N] [, threads = T] [, train = true])";
        if input.is_empty() {
            return Err(syn::Error::new(Span::call_site(), usage));
        }
        let name: Ident = input.parse().map_err(|e| syn::Error::new(e.span(), format!("expected the model's type name first; {usage}")))?;
        input.parse::<Token![,]>().map_err(|e| syn::Error::new(e.span(), format!("expected `,` after the name; {usage}")))?;
        let source = if input.peek(LitStr) {
            Source::File(input.parse()?)
        } else if input.peek(Ident) {
            let call: Ident = input.parse()?;
            if call != "mobilenet_v1" {
                return Err(syn::Error::new(call.span(), format!("unknown model constructor `{call}` (expected mobilenet_v1(..) or a path string)")));
            }
            let span = call.span();
            Source::MobileNet(parse_mobilenet(input, &call)?, span)
        } else {
            return Err(syn::Error::new(input.span(), format!("expected an ONNX file path or mobilenet_v1(..); {usage}")));
        };
        let (mut batch, mut threads, mut train) = (None, None, None);
        while input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let key: Ident = input.parse()?;
            if key == "train" {
                if train.is_some() {
                    return Err(syn::Error::new(key.span(), "`train` is given twice"));
                }
                input.parse::<Token![=]>()?;
                let lit: Lit = input.parse()?;
                match lit {
                    Lit::Bool(b) => train = Some(b.value),
                    other => return Err(syn::Error::new(other.span(), "`train` takes true or false")),
                }
                continue;
            }
            let slot = if key == "batch" {
                &mut batch
            } else if key == "threads" {
                &mut threads
            } else {
                return Err(syn::Error::new(key.span(), format!("unknown option `{key}` (the options are `batch = N`, `threads = T` and `train = true`)")));
            };
            if slot.is_some() {
                return Err(syn::Error::new(key.span(), format!("`{key}` is given twice")));
            }
            input.parse::<Token![=]>()?;
            let lit: Lit = input.parse()?;
            let k = key.to_string();
            *slot = Some((positive(int(&lit, &k)?, &lit, &k)?, lit.span()));
        }
        if !input.is_empty() {
            return Err(syn::Error::new(input.span(), format!("unexpected tokens; {usage}")));
        }
        Ok(ModelArgs { name, source, batch, threads, train: train.unwrap_or(false) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        syn::parse_str::<ModelArgs>(s).unwrap_err().to_string()
    }

    #[test]
    fn parses_both_forms() {
        let a = syn::parse_str::<ModelArgs>(r#"Net, "models/m.onnx", batch = 4"#).unwrap();
        assert_eq!(a.name, "Net");
        assert!(matches!(&a.source, Source::File(p) if p.value() == "models/m.onnx"));
        assert_eq!(a.batch.map(|b| b.0), Some(4));
        let b = syn::parse_str::<ModelArgs>("SeedNet, mobilenet_v1(alpha = 0.5, resolution = 32, classes = 10, seed = 7,)").unwrap();
        match &b.source {
            Source::MobileNet(m, _) => assert_eq!(*m, MobileNetArgs { alpha: 0.5, resolution: 32, classes: 10, channels: 3, seed: 7 }),
            _ => panic!("expected the constructor form"),
        }
        assert!(b.batch.is_none());
        assert!(!b.train);
        let t = syn::parse_str::<ModelArgs>(r#"Net, "m.onnx", train = true, batch = 8"#).unwrap();
        assert!(t.train);
        assert_eq!(t.invocation(), r#"include_model!(Net, "m.onnx", batch = 8, train = true)"#);
        let t = syn::parse_str::<ModelArgs>(r#"Net, "m.onnx", threads = 2, batch = 3"#).unwrap();
        assert_eq!((t.batch.map(|b| b.0), t.threads.map(|b| b.0)), (Some(3), Some(2)));
        assert_eq!(t.invocation(), r#"include_model!(Net, "m.onnx", batch = 3, threads = 2)"#);
        assert_eq!(b.invocation(), "include_model!(SeedNet, mobilenet_v1(alpha = 0.5, resolution = 32, classes = 10, channels = 3, seed = 7))");
        let c = syn::parse_str::<ModelArgs>("N, mobilenet_v1(alpha = 1, resolution = 224, classes = 1000),").unwrap();
        assert!(matches!(c.source, Source::MobileNet(MobileNetArgs { alpha, .. }, _) if alpha == 1.0));
    }

    #[test]
    fn mistakes_are_clear_errors() {
        assert!(err("").contains("usage"));
        assert!(err(r#""m.onnx""#).contains("type name"));
        assert!(err("Net, 42").contains("expected an ONNX file path"));
        assert!(err("Net, resnet50(depth = 50)").contains("unknown model constructor `resnet50`"));
        assert!(err("Net, mobilenet_v1(alpha = 1.0, resolutin = 32, classes = 10)").contains("unknown argument `resolutin`"));
        assert!(err("Net, mobilenet_v1(alpha = 1.0, classes = 10)").contains("needs resolution"));
        assert!(err("Net, mobilenet_v1(alpha = 1.0, alpha = 0.5, resolution = 32, classes = 10)").contains("given twice"));
        assert!(err("Net, mobilenet_v1(alpha = 0.0, resolution = 32, classes = 10)").contains("positive"));
        assert!(err(r#"Net, mobilenet_v1(alpha = "big", resolution = 32, classes = 10)"#).contains("takes a number"));
        assert!(err("Net, mobilenet_v1(alpha = 1.0, resolution = 32.5, classes = 10)").contains("whole number"));
        assert!(err("Net, mobilenet_v1(alpha = 1.0, resolution = 32, classes = 0)").contains("at least 1"));
        assert!(err(r#"Net, "m.onnx", batch = 0"#).contains("at least 1"));
        assert!(err(r#"Net, "m.onnx", bath = 2"#).contains("unknown option `bath`"));
        assert!(err(r#"Net, "m.onnx", batch = 2, batch = 3"#).contains("twice"));
        assert!(err(r#"Net, "m.onnx" extra"#).contains("unexpected tokens"));
        assert!(err(r#"Net, "m.onnx", train = 1"#).contains("true or false"));
        assert!(err(r#"Net, "m.onnx", train = true, train = false"#).contains("twice"));
    }
}
