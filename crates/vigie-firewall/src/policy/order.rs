//! Moving a policy one place up or down the evaluation order (the console's Move up / Move
//! down). The order is (priority, id), so a move is a change of priorities: the moved policy
//! alone gets a priority between its new neighbours when one exists; otherwise (equal
//! priorities, no gap left) every policy is renumbered in the new order with gaps of up to 10.
//! The order is read and the priorities written in one transaction, so a move is made against
//! the order as it is at that moment, whatever changed since the page was drawn.
use super::{COLS, Policy, emit_change, from_row, write_rules};
use crate::events;
use crate::state::FirewallState;
use serde::Deserialize;
use uuid::Uuid;
use vigie_core::StoreError;
use vigie_core::auth::Principal;
use vigie_core::http::ApiError;

/// The highest priority a policy may have.
const MAX_PRIORITY: i64 = 1000;

/// The widest gap between priorities a renumbering leaves.
const GAP: i64 = 10;

/// Which way a policy moves in the evaluation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// One place earlier (evaluated before its neighbour).
    Up,
    /// One place later.
    Down,
}

/// The priority changes, `(index in keys, new priority)`, that move the policy at `from` one
/// place in `keys` (every policy's `(priority, id)`, in evaluation order). Empty when it is
/// already first (up) or last (down).
pub fn plan(keys: &[(i64, Uuid)], from: usize, step: Step) -> Vec<(usize, i64)> {
    let to = match step {
        Step::Up => from.checked_sub(1),
        Step::Down => (from + 1 < keys.len()).then_some(from + 1),
    };
    let Some(to) = to else { return Vec::new() };
    let id = keys[from].1;
    // The places it must land between.
    let (before, after) = match step {
        Step::Up => (to.checked_sub(1).map(|k| keys[k]), Some(keys[to])),
        Step::Down => (Some(keys[to]), keys.get(to + 1).copied()),
    };
    let fits = |p: i64| (0..=MAX_PRIORITY).contains(&p) && before.is_none_or(|b| b < (p, id)) && after.is_none_or(|a| (p, id) < a);
    // Nearest to its current priority first: the smallest change that does it.
    let mut candidates = Vec::with_capacity(4);
    match step {
        Step::Up => {
            candidates.extend(after.into_iter().flat_map(|a| [a.0, a.0 - 1]));
            candidates.extend(before.into_iter().flat_map(|b| [b.0 + 1, b.0]));
        }
        Step::Down => {
            candidates.extend(before.into_iter().flat_map(|b| [b.0, b.0 + 1]));
            candidates.extend(after.into_iter().flat_map(|a| [a.0 - 1, a.0]));
        }
    }
    if let Some(p) = candidates.into_iter().find(|&p| fits(p)) {
        return vec![(from, p)];
    }
    // No room: renumber everyone in the new order.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.swap(from, to);
    let gap = (MAX_PRIORITY / keys.len().max(1) as i64).clamp(1, GAP);
    order
        .into_iter()
        .enumerate()
        .map(|(place, i)| (i, ((place as i64 + 1) * gap).min(MAX_PRIORITY)))
        .filter(|&(i, p)| keys[i].0 != p)
        .collect()
}

/// Moves policy `id` one place (`step`) in its tenant's evaluation order, disabled policies
/// included, and emits `policy.updated` for every policy whose priority changed. Returns the
/// moved policy (unchanged when it was already first or last).
pub async fn move_policy(st: &FirewallState, by: &Principal, id: Uuid, step: Step) -> Result<Policy, ApiError> {
    let (tenant, actor, s, now) = (by.tenant_id, by.label(), st.clone(), st.clock.now());
    write_rules(st, tenant, move |c| -> Result<Policy, StoreError> {
        let mut all = c
            .prepare_cached(&format!("SELECT {COLS} FROM policies WHERE tenant_id = ?1 ORDER BY priority, id"))?
            .query_map([tenant.to_string()], from_row)?
            .collect::<Result<Vec<Policy>, _>>()?;
        let from = all.iter().position(|p| p.id == id).ok_or(StoreError::NotFound)?;
        let keys: Vec<(i64, Uuid)> = all.iter().map(|p| (p.priority, p.id)).collect();
        for (i, priority) in plan(&keys, from, step) {
            let p = &mut all[i];
            p.priority = priority;
            p.updated_at = now;
            c.execute(
                "UPDATE policies SET priority = ?1, updated_at = ?2 WHERE tenant_id = ?3 AND id = ?4",
                rusqlite::params![priority, now.timestamp_micros(), tenant.to_string(), p.id.to_string()],
            )?;
            emit_change(&s, c, tenant, events::POLICY_UPDATED, p, &actor, now)?;
        }
        Ok(all.swap_remove(from))
    })
    .await
    .map_err(ApiError::from_store("policy"))
}

#[cfg(test)]
mod tests {
    use super::{Step, plan};
    use uuid::Uuid;

    fn keys(priorities: &[i64]) -> Vec<(i64, Uuid)> {
        priorities.iter().enumerate().map(|(i, &p)| (p, Uuid::from_u128(i as u128 + 1))).collect()
    }

    /// The order after applying `plan`, as the original indexes.
    fn order_after(keys: &[(i64, Uuid)], from: usize, step: Step) -> Vec<usize> {
        let mut k = keys.to_vec();
        for (i, p) in plan(keys, from, step) {
            k[i].0 = p;
        }
        let mut idx: Vec<usize> = (0..k.len()).collect();
        idx.sort_by_key(|&i| k[i]);
        idx
    }

    #[test]
    fn a_gap_between_the_neighbours_changes_only_the_moved_policy() {
        let k = keys(&[10, 20, 30]);
        assert_eq!(plan(&k, 2, Step::Up), vec![(2, 19)]);
        assert_eq!(order_after(&k, 2, Step::Up), [0, 2, 1]);
        assert_eq!(plan(&k, 0, Step::Down), vec![(0, 21)]);
        assert_eq!(order_after(&k, 0, Step::Down), [1, 0, 2]);
        assert_eq!(order_after(&k, 1, Step::Up), [1, 0, 2]);
    }

    #[test]
    fn equal_priorities_are_renumbered_in_the_new_order() {
        let k = keys(&[100, 100, 100, 100]);
        assert_eq!(order_after(&k, 2, Step::Up), [0, 2, 1, 3]);
        assert_eq!(order_after(&k, 1, Step::Down), [0, 2, 1, 3]);
        assert_eq!(order_after(&k, 3, Step::Up), [0, 1, 3, 2]);
        // Moving to the top needs only a lower priority.
        assert_eq!(plan(&k, 1, Step::Up), vec![(1, 99)]);
        let renumbered = plan(&k, 2, Step::Up);
        assert_eq!(renumbered, vec![(0, 10), (2, 20), (1, 30), (3, 40)]);
    }

    #[test]
    fn first_and_last_do_not_move_and_priority_bounds_hold() {
        let k = keys(&[0, 0, 1000, 1000]);
        assert!(plan(&k, 0, Step::Up).is_empty());
        assert!(plan(&k, 3, Step::Down).is_empty());
        for from in 0..4 {
            for step in [Step::Up, Step::Down] {
                for (_, p) in plan(&k, from, step) {
                    assert!((0..=1000).contains(&p));
                }
            }
        }
        assert_eq!(order_after(&k, 1, Step::Up), [1, 0, 2, 3]);
        assert_eq!(order_after(&k, 2, Step::Down), [0, 1, 3, 2]);
        assert_eq!(order_after(&k, 2, Step::Up), [0, 2, 1, 3]);
    }

    #[test]
    fn every_move_swaps_exactly_the_two_neighbours() {
        // Small exhaustive sweep over priorities with ties and no gaps.
        for a in 0..3 {
            for b in 0..3 {
                for c in 0..3 {
                    let mut k = keys(&[a, b, c]);
                    k.sort();
                    for from in 0..3 {
                        for step in [Step::Up, Step::Down] {
                            let mut want: Vec<usize> = (0..3).collect();
                            match step {
                                Step::Up if from > 0 => want.swap(from, from - 1),
                                Step::Down if from < 2 => want.swap(from, from + 1),
                                _ => {}
                            }
                            assert_eq!(order_after(&k, from, step), want, "{k:?} {from} {step:?}");
                        }
                    }
                }
            }
        }
    }
}
