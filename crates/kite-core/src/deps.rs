//! Dependency graph rules: a dependency that would close a cycle is refused, and the refusal names
//! the cycle. The graph is handed in as a lookup so the same check serves the in-memory tests and
//! the daemon, which reads edges from SQLite.

use std::collections::{HashMap, HashSet};

/// If adding the edge `task → on` (task depends on `on`) would close a cycle, returns the cycle as
/// task ids, starting and ending with `task` (`[task, on, ..., task]`).
pub fn cycle_if_added(task: i64, on: i64, deps_of: impl Fn(i64) -> Vec<i64>) -> Option<Vec<i64>> {
    if task == on {
        return Some(vec![task, task]);
    }
    // Depth-first search from `on` along dependency edges looking for `task`, keeping parents to
    // rebuild the path.
    let mut parent: HashMap<i64, i64> = HashMap::new();
    let mut seen: HashSet<i64> = HashSet::from([on]);
    let mut stack = vec![on];
    while let Some(node) = stack.pop() {
        for next in deps_of(node) {
            if next == task {
                let mut path = vec![task];
                let mut back = vec![node];
                let mut cur = node;
                while let Some(&p) = parent.get(&cur) {
                    back.push(p);
                    cur = p;
                }
                back.reverse();
                path.extend(back);
                path.push(task);
                return Some(path);
            }
            if seen.insert(next) {
                parent.insert(next, node);
                stack.push(next);
            }
        }
    }
    None
}

/// Formats a cycle for an error message: `3 → 5 → 7 → 3`.
pub fn format_cycle<T: std::fmt::Display>(cycle: &[T]) -> String {
    cycle.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" → ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(i64, i64)]) -> impl Fn(i64) -> Vec<i64> + '_ {
        move |n| edges.iter().filter(|(a, _)| *a == n).map(|(_, b)| *b).collect()
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        assert_eq!(cycle_if_added(1, 1, graph(&[])), Some(vec![1, 1]));
    }

    #[test]
    fn a_chain_closing_on_itself_is_named_in_order() {
        // 2 depends on 3, 3 depends on 1; adding 1 → 2 closes 1 → 2 → 3 → 1.
        let edges = [(2, 3), (3, 1)];
        assert_eq!(cycle_if_added(1, 2, graph(&edges)), Some(vec![1, 2, 3, 1]));
    }

    #[test]
    fn diamonds_are_not_cycles() {
        let edges = [(1, 2), (1, 3), (2, 4), (3, 4)];
        assert_eq!(cycle_if_added(5, 1, graph(&edges)), None);
        assert_eq!(cycle_if_added(1, 4, graph(&edges)), None);
    }

    #[test]
    fn formats_with_arrows() {
        assert_eq!(format_cycle(&[1, 2, 1]), "1 → 2 → 1");
    }

    proptest::proptest! {
        /// Whatever random DAG we grow edge by edge, refusing exactly the edges the check flags
        /// keeps it acyclic, and every reported cycle is a real path in the graph.
        #[test]
        fn accepted_edges_never_form_a_cycle(edges in proptest::collection::vec((0i64..12, 0i64..12), 0..60)) {
            let mut accepted: Vec<(i64, i64)> = Vec::new();
            for (a, b) in edges {
                match cycle_if_added(a, b, graph(&accepted)) {
                    None => accepted.push((a, b)),
                    Some(c) => {
                        proptest::prop_assert_eq!(c.first(), Some(&a));
                        proptest::prop_assert_eq!(c.last(), Some(&a));
                        proptest::prop_assert_eq!(c.get(1), Some(&b));
                        for w in c[1..].windows(2) {
                            proptest::prop_assert!(accepted.contains(&(w[0], w[1])));
                        }
                    }
                }
            }
            // Topological check: Kahn's algorithm consumes every node.
            let nodes: HashSet<i64> = accepted.iter().flat_map(|(a, b)| [*a, *b]).collect();
            let mut indeg: HashMap<i64, usize> = nodes.iter().map(|n| (*n, 0)).collect();
            for (_, b) in &accepted { *indeg.get_mut(b).unwrap() += 1; }
            let mut ready: Vec<i64> = indeg.iter().filter(|(_, d)| **d == 0).map(|(n, _)| *n).collect();
            let mut seen = 0;
            while let Some(n) = ready.pop() {
                seen += 1;
                for (a, b) in &accepted {
                    if *a == n {
                        let d = indeg.get_mut(b).unwrap();
                        *d -= 1;
                        if *d == 0 { ready.push(*b); }
                    }
                }
            }
            proptest::prop_assert_eq!(seen, nodes.len());
        }
    }
}
