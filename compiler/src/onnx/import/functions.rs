//! Model-local ONNX functions (newer PyTorch exporters write one per module): every call is
//! replaced by the function's body, with formal inputs/outputs bound to the call's tensors,
//! attribute references (`ref_attr_name`) substituted and inner names made unique.

use std::collections::{HashMap, HashSet};

use mobilenetc_runtime::onnx::{AttributeProto, FunctionProto, ModelProto, NodeProto, OperatorSetIdProto};

use crate::error::{Error, Result};

/// A node of the flattened graph with the default-domain opset that governs it (a function's
/// body may declare its own).
#[derive(Clone, Debug)]
pub struct FlatNode {
    pub proto: NodeProto,
    pub opset: i64,
    /// The node's display name (never empty: falls back to the first output).
    pub name: String,
}

/// Nesting deeper than this is refused: it guards against recursive functions.
const MAX_DEPTH: usize = 32;

/// The default-domain opset in a list of opset imports (0 when absent).
pub fn default_opset(imports: &[OperatorSetIdProto]) -> i64 {
    imports.iter().find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx"))).and_then(|o| o.version).unwrap_or(0)
}

fn domain_of(d: &Option<String>) -> &str {
    match d.as_deref() {
        None | Some("ai.onnx") => "",
        Some(d) => d,
    }
}

/// The graph's nodes with every call of a model-local function inlined. `names` holds every
/// tensor name already in use; names made here are added to it.
pub fn flatten(model: &ModelProto, names: &mut HashSet<String>) -> Result<Vec<FlatNode>> {
    let funcs: HashMap<(String, String, String), &FunctionProto> = model
        .functions
        .iter()
        .map(|f| ((domain_of(&f.domain).to_string(), f.name.clone().unwrap_or_default(), f.overload.clone().unwrap_or_default()), f))
        .collect();
    let opset = default_opset(&model.opset_import);
    let nodes = model.graph.as_ref().map(|g| g.node.as_slice()).unwrap_or(&[]);
    let mut out = Vec::with_capacity(nodes.len());
    let mut stack = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let name = display_name(n, &format!("node{i}"));
        expand(n.clone(), name, opset, &funcs, names, &mut stack, &mut out)?;
    }
    Ok(out)
}

fn display_name(n: &NodeProto, fallback: &str) -> String {
    match n.name.as_deref() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => n.output.iter().find(|o| !o.is_empty()).cloned().unwrap_or_else(|| fallback.to_string()),
    }
}

fn expand(
    node: NodeProto,
    name: String,
    opset: i64,
    funcs: &HashMap<(String, String, String), &FunctionProto>,
    names: &mut HashSet<String>,
    stack: &mut Vec<String>,
    out: &mut Vec<FlatNode>,
) -> Result<()> {
    let key = (domain_of(&node.domain).to_string(), node.op_type.clone().unwrap_or_default(), node.overload.clone().unwrap_or_default());
    let Some(f) = funcs.get(&key) else {
        out.push(FlatNode { proto: node, opset, name });
        return Ok(());
    };
    let fname = format!("{}{}", if key.0.is_empty() { String::new() } else { format!("{}.", key.0) }, key.1);
    if stack.len() >= MAX_DEPTH || stack.contains(&fname) {
        return Err(Error::Graph(format!("function '{fname}' calls itself (through {}); recursive functions cannot be inlined", stack.join(" → "))));
    }
    if node.input.len() > f.input.len() || node.output.len() > f.output.len() {
        return Err(Error::node(&name, &fname, format!("calls the function with {} inputs and {} outputs; it declares {} and {}", node.input.len(), node.output.len(), f.input.len(), f.output.len())));
    }
    // Formal → actual names; a formal input the call leaves out is an absent optional ("").
    let mut bind: HashMap<String, String> = HashMap::new();
    for (i, formal) in f.input.iter().enumerate() {
        bind.insert(formal.clone(), node.input.get(i).cloned().unwrap_or_default());
    }
    for (i, formal) in f.output.iter().enumerate() {
        bind.insert(formal.clone(), node.output.get(i).cloned().unwrap_or_default());
    }
    let inner_opset = match default_opset(&f.opset_import) {
        0 => opset,
        v => v,
    };
    stack.push(fname);
    for (j, inner) in f.node.iter().enumerate() {
        let mut n = inner.clone();
        for t in n.input.iter_mut().chain(n.output.iter_mut()) {
            if t.is_empty() {
                continue;
            }
            *t = match bind.get(t.as_str()) {
                Some(actual) => actual.clone(),
                None => {
                    let fresh = unique(&format!("{name}/{t}"), names);
                    bind.insert(t.clone(), fresh.clone());
                    fresh
                }
            };
        }
        n.attribute = substitute(&inner.attribute, &node.attribute, &f.attribute_proto);
        let inner_name = format!("{name}/{}", display_name(inner, &format!("{}{j}", inner.op_type.as_deref().unwrap_or("node"))));
        n.name = Some(inner_name.clone());
        expand(n, inner_name, inner_opset, funcs, names, stack, out)?;
    }
    stack.pop();
    Ok(())
}

/// Replaces attribute references by the caller's value (renamed to the inner attribute's
/// name), or the function's default; a reference with neither is dropped (the op's default).
fn substitute(inner: &[AttributeProto], call: &[AttributeProto], defaults: &[AttributeProto]) -> Vec<AttributeProto> {
    inner
        .iter()
        .filter_map(|a| match a.ref_attr_name.as_deref() {
            None | Some("") => Some(a.clone()),
            Some(r) => call.iter().chain(defaults).find(|c| c.name.as_deref() == Some(r)).map(|c| AttributeProto { name: a.name.clone(), ref_attr_name: None, ..c.clone() }),
        })
        .collect()
}

/// `base`, or `base_1`, `base_2`, … whichever is not taken yet; then taken.
pub fn unique(base: &str, names: &mut HashSet<String>) -> String {
    let mut s = base.to_string();
    let mut i = 1;
    while names.contains(&s) {
        s = format!("{base}_{i}");
        i += 1;
    }
    names.insert(s.clone());
    s
}
