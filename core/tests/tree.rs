//! Wide trees: cancel reaches every node, and dropping them afterwards frees
//! everything without touching freed parents.

use polyctx::{stats, with_cancel, Context};

#[test]
fn cancel_then_drop_wide_trees() {
    for round in 0..300 {
        let (root, cancel) = with_cancel(&Context::background());
        let mut nodes = Vec::new();
        for _ in 0..100 {
            let (child, c) = with_cancel(&root);
            for _ in 0..99 {
                nodes.push(with_cancel(&child));
            }
            nodes.push((child, c));
        }
        cancel.cancel();
        assert!(nodes.iter().all(|(c, _)| c.is_done()), "round {round}");
        drop(nodes);
        assert_eq!(stats::children(&root), 0);
    }
}
