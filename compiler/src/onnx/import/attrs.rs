//! Typed access to a node's attributes. A wrong kind (a float where an int belongs) and an
//! attribute the op does not define are errors that name the node, not silent defaults.

use mobilenetc_runtime::onnx::attribute_proto::AttributeType as T;
use mobilenetc_runtime::onnx::{AttributeProto, NodeProto, TensorProto};

use crate::error::{Error, Result};

pub struct Attrs<'a> {
    pub node: &'a str,
    pub op: &'a str,
    list: &'a [AttributeProto],
}

/// The attribute's kind: the `type` field, or for old writers that omit it, the field in use.
fn kind(a: &AttributeProto) -> T {
    if let Some(t) = a.r#type.and_then(|t| T::try_from(t).ok()).filter(|t| *t != T::Undefined) {
        return t;
    }
    if a.f.is_some() {
        T::Float
    } else if a.i.is_some() {
        T::Int
    } else if a.s.is_some() {
        T::String
    } else if a.t.is_some() {
        T::Tensor
    } else if a.g.is_some() {
        T::Graph
    } else if !a.floats.is_empty() {
        T::Floats
    } else if !a.ints.is_empty() {
        T::Ints
    } else if !a.strings.is_empty() {
        T::Strings
    } else {
        T::Undefined
    }
}

impl<'a> Attrs<'a> {
    pub fn new(node: &'a str, proto: &'a NodeProto) -> Attrs<'a> {
        Attrs { node, op: proto.op_type.as_deref().unwrap_or(""), list: &proto.attribute }
    }

    fn err(&self, message: String) -> Error {
        Error::node(self.node, self.op, message)
    }

    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.list.iter().find(|a| a.name.as_deref() == Some(name))
    }

    /// Refuses attributes the op does not define (a typo or a newer semantics we would ignore).
    pub fn allow(&self, known: &[&str]) -> Result<()> {
        for a in self.list {
            let name = a.name.as_deref().unwrap_or("");
            if !known.contains(&name) {
                return Err(self.err(format!("has the attribute '{name}', which this op does not define here (known: {})", known.join(", "))));
            }
        }
        Ok(())
    }

    fn want(&self, name: &str, expect: T) -> Result<Option<&'a AttributeProto>> {
        match self.get(name) {
            None => Ok(None),
            Some(a) if kind(a) == expect => Ok(Some(a)),
            Some(a) => Err(self.err(format!("attribute '{name}' must be {}, found {}", expect.as_str_name(), kind(a).as_str_name()))),
        }
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>> {
        Ok(self.want(name, T::Int)?.map(|a| a.i.unwrap_or(0)))
    }

    pub fn int_or(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    /// A 0/1 flag.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool> {
        match self.int(name)? {
            None => Ok(default),
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(v) => Err(self.err(format!("attribute '{name}' must be 0 or 1, found {v}"))),
        }
    }

    pub fn float(&self, name: &str) -> Result<Option<f32>> {
        Ok(self.want(name, T::Float)?.map(|a| a.f.unwrap_or(0.0)))
    }

    pub fn float_or(&self, name: &str, default: f32) -> Result<f32> {
        Ok(self.float(name)?.unwrap_or(default))
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        Ok(self.want(name, T::Ints)?.map(|a| a.ints.clone()))
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        Ok(self.want(name, T::Floats)?.map(|a| a.floats.clone()))
    }

    pub fn string(&self, name: &str) -> Result<Option<String>> {
        self.want(name, T::String)?
            .map(|a| String::from_utf8(a.s.clone().unwrap_or_default()).map_err(|_| self.err(format!("attribute '{name}' is not UTF-8"))))
            .transpose()
    }

    pub fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>> {
        Ok(self.want(name, T::Tensor)?.and_then(|a| a.t.as_ref()))
    }

    /// `n` non-negative sizes (kernel, strides, dilations), or the default.
    pub fn sizes(&self, name: &str, n: usize, default: usize) -> Result<Vec<usize>> {
        match self.ints(name)? {
            None => Ok(vec![default; n]),
            Some(v) if v.len() == n && v.iter().all(|&x| x >= 0) => Ok(v.iter().map(|&x| x as usize).collect()),
            Some(v) => Err(self.err(format!("attribute '{name}' must hold {n} non-negative values, found {v:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(attrs: Vec<AttributeProto>) -> NodeProto {
        NodeProto { op_type: Some("Conv".into()), attribute: attrs, ..Default::default() }
    }

    #[test]
    fn kinds_defaults_and_errors() {
        let n = node(vec![
            AttributeProto { name: Some("group".into()), r#type: Some(T::Int as i32), i: Some(4), ..Default::default() },
            // No type field: an old writer. The field in use decides.
            AttributeProto { name: Some("strides".into()), ints: vec![2, 2], ..Default::default() },
            AttributeProto { name: Some("auto_pad".into()), r#type: Some(T::String as i32), s: Some(b"SAME_UPPER".to_vec()), ..Default::default() },
            AttributeProto { name: Some("epsilon".into()), r#type: Some(T::Float as i32), f: Some(1e-3), ..Default::default() },
        ]);
        let a = Attrs::new("c1", &n);
        assert_eq!(a.int_or("group", 1).unwrap(), 4);
        assert_eq!(a.int_or("missing", 7).unwrap(), 7);
        assert_eq!(a.sizes("strides", 2, 1).unwrap(), [2, 2]);
        assert_eq!(a.sizes("dilations", 2, 1).unwrap(), [1, 1]);
        assert_eq!(a.string("auto_pad").unwrap().as_deref(), Some("SAME_UPPER"));
        let e = a.ints("group").unwrap_err().to_string();
        assert!(e.contains("node 'c1' (Conv)") && e.contains("INTS") && e.contains("INT"), "{e}");
        assert!(a.sizes("strides", 3, 1).is_err());
        assert!(a.allow(&["group", "strides", "auto_pad"]).unwrap_err().to_string().contains("'epsilon'"));
        assert!(a.allow(&["group", "strides", "auto_pad", "epsilon"]).is_ok());
        assert_eq!(a.float("epsilon").unwrap(), Some(1e-3));
    }
}
