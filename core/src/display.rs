//! `Display` and `Debug` for contexts: the chain from the root, as Go's
//! `String()` prints it, e.g. `context.Background.WithCancel.WithValue(trace-id, abc)`.

use std::fmt;

use crate::clock;
use crate::node::{Kind, Node};
use crate::value::describe;
use crate::Context;

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_chain(f, &self.node)
    }
}

/// Go's `String()` of the context at `node`.
pub(crate) fn chain(node: &Node) -> String {
    struct Chain<'a>(&'a Node);
    impl fmt::Display for Chain<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_chain(f, self.0)
        }
    }
    Chain(node).to_string()
}

fn write_chain(f: &mut fmt::Formatter<'_>, node: &Node) -> fmt::Result {
    // Collected first, so that a million-deep chain prints without recursing.
    let mut chain: Vec<&Node> = Vec::new();
    let mut node: Option<&Node> = Some(node);
    while let Some(n) = node {
        chain.push(n);
        node = n.parent().map(|p| &**p);
    }
    for node in chain.into_iter().rev() {
        match &node.kind {
            Kind::Background => f.write_str("context.Background")?,
            Kind::Todo => f.write_str("context.TODO")?,
            Kind::WithoutCancel => f.write_str(".WithoutCancel")?,
            Kind::Value(v) => write!(f, ".WithValue({}, {})", v.key.name(), describe(&*v.value))?,
            Kind::Cancel(c) if c.own_deadline => {
                let now = clock::now_ns();
                let (sign, ns) = if c.deadline >= now {
                    ("", c.deadline - now)
                } else {
                    ("-", now - c.deadline)
                };
                write!(f, ".WithDeadline([{sign}{:?}])", std::time::Duration::from_nanos(ns))?
            }
            Kind::Cancel(_) => f.write_str(".WithCancel")?,
        }
    }
    Ok(())
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
