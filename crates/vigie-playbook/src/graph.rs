//! The step graph: edges (`next`, a condition's `then`/`else`), cycles, reachability and
//! dominators — which steps have run on every path to a given step. Steps are at most
//! [`crate::MAX_STEPS`] (≤ 128), so sets of steps are `u128` bit sets.
use serde::Serialize;

/// Where a step goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Next {
    /// The step at this index in [`crate::Playbook::steps`].
    Step(usize),
    /// The run ends.
    End,
}

/// The successors of every step, and which steps are conditions.
pub(crate) struct Graph {
    pub succ: Vec<Vec<usize>>,
    pub is_condition: Vec<bool>,
}

fn bit(i: usize) -> u128 {
    1u128 << i
}

impl Graph {
    fn len(&self) -> usize {
        self.succ.len()
    }

    /// The steps reachable from `start` (included) without passing through `avoid`.
    pub fn reachable(&self, start: usize, avoid: Option<usize>) -> u128 {
        if Some(start) == avoid || start >= self.len() {
            return 0;
        }
        let mut seen = bit(start);
        let mut stack = vec![start];
        while let Some(n) = stack.pop() {
            for &m in &self.succ[n] {
                if Some(m) != avoid && seen & bit(m) == 0 {
                    seen |= bit(m);
                    stack.push(m);
                }
            }
        }
        seen
    }

    /// The steps that can reach `target` (included) without passing through `avoid`.
    fn reaching(&self, target: usize, avoid: usize) -> u128 {
        let mut set = bit(target);
        loop {
            let before = set;
            for n in 0..self.len() {
                if n != avoid && self.succ[n].iter().any(|&m| set & bit(m) != 0) {
                    set |= bit(n);
                }
            }
            if set == before {
                return set;
            }
        }
    }

    /// The steps on one cycle, in order, if there is a cycle.
    pub fn find_cycle(&self) -> Option<Vec<usize>> {
        // 0 = not visited, 1 = on the current path, 2 = done.
        let mut color = vec![0u8; self.len()];
        for root in 0..self.len() {
            if color[root] != 0 {
                continue;
            }
            let mut path: Vec<(usize, usize)> = vec![(root, 0)];
            color[root] = 1;
            while let Some(&mut (n, ref mut edge)) = path.last_mut() {
                if let Some(&m) = self.succ[n].get(*edge) {
                    *edge += 1;
                    match color[m] {
                        0 => {
                            color[m] = 1;
                            path.push((m, 0));
                        }
                        1 => {
                            let from = path.iter().position(|&(p, _)| p == m).unwrap_or(0);
                            return Some(path[from..].iter().map(|&(p, _)| p).collect());
                        }
                        _ => {}
                    }
                } else {
                    color[n] = 2;
                    path.pop();
                }
            }
        }
        None
    }

    /// For every step reachable from the first, the steps that run before it on every path
    /// (itself included); 0 for unreachable steps.
    pub fn dominators(&self) -> Vec<u128> {
        let n = self.len();
        let reachable = self.reachable(0, None);
        let all: u128 = if n >= 128 { u128::MAX } else { bit(n) - 1 };
        let mut dom: Vec<u128> = (0..n)
            .map(|i| {
                if i == 0 {
                    bit(0)
                } else if reachable & bit(i) != 0 {
                    all
                } else {
                    0
                }
            })
            .collect();
        let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (p, succ) in self.succ.iter().enumerate() {
            if reachable & bit(p) != 0 {
                for &s in succ {
                    preds[s].push(p);
                }
            }
        }
        loop {
            let mut changed = false;
            for i in 1..n {
                if reachable & bit(i) == 0 {
                    continue;
                }
                let meet = preds[i].iter().fold(all, |acc, &p| acc & dom[p]);
                let d = meet | bit(i);
                if d != dom[i] {
                    dom[i] = d;
                    changed = true;
                }
            }
            if !changed {
                return dom;
            }
        }
    }

    /// Why `x` may not have run before `s`: a condition that can lead to `s` around `x`.
    pub fn condition_skipping(&self, x: usize, s: usize) -> Option<usize> {
        let from_start = self.reachable(0, Some(x));
        let to_use = self.reaching(s, x);
        (0..self.len()).find(|&c| self.is_condition[c] && from_start & to_use & bit(c) != 0 && self.reachable(c, None) & bit(x) != 0)
    }

    /// Whether `to` can be reached from `from`.
    pub fn leads_to(&self, from: usize, to: usize) -> bool {
        self.reachable(from, None) & bit(to) != 0
    }

    /// Whether step `i` is in the set.
    pub fn contains(set: u128, i: usize) -> bool {
        set & bit(i) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(succ: &[&[usize]], conditions: &[usize]) -> Graph {
        Graph { succ: succ.iter().map(|s| s.to_vec()).collect(), is_condition: (0..succ.len()).map(|i| conditions.contains(&i)).collect() }
    }

    #[test]
    fn a_cycle_is_found_with_the_steps_on_it() {
        let g = graph(&[&[1], &[2], &[3, 4], &[1], &[]], &[2]);
        assert_eq!(g.find_cycle(), Some(vec![1, 2, 3]));
        assert_eq!(graph(&[&[1, 2], &[3], &[3], &[]], &[0]).find_cycle(), None);
    }

    #[test]
    fn a_diamond_dominates_the_join_only_through_its_head() {
        // 0 → cond 1 → (2 | 3) → 4
        let g = graph(&[&[1], &[2, 3], &[4], &[4], &[]], &[1]);
        let dom = g.dominators();
        assert!(Graph::contains(dom[4], 1));
        assert!(!Graph::contains(dom[4], 2));
        assert!(Graph::contains(dom[2], 0));
        assert_eq!(g.condition_skipping(2, 4), Some(1));
    }

    #[test]
    fn an_unreachable_step_has_no_dominators() {
        let g = graph(&[&[], &[0]], &[]);
        assert_eq!(g.dominators()[1], 0);
        assert_eq!(g.reachable(0, None), 1);
    }
}
