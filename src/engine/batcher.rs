//! Forming batches from queued sequences under a padded-token budget (pure, no threads).

use std::collections::VecDeque;

/// One sequence waiting to be embedded: which job it belongs to and its place in that job.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub job: u64,
    pub index: usize,
    pub ids: Vec<u32>,
}

/// Take the next batch from the front of `queue`: the oldest sequence always goes first, then
/// following ones while `count * longest <= max_tokens` (the padded cost) and
/// `count <= max_size`. Sequences that would break the budget stay queued, in order.
pub fn take_batch(queue: &mut VecDeque<Item>, max_tokens: usize, max_size: usize) -> Vec<Item> {
    let mut batch: Vec<Item> = Vec::new();
    let mut longest = 0usize;
    let mut kept = VecDeque::new();
    while let Some(item) = queue.pop_front() {
        let l = longest.max(item.ids.len());
        let fits =
            batch.is_empty() || ((batch.len() + 1) * l <= max_tokens && batch.len() < max_size);
        if fits {
            longest = l;
            batch.push(item);
        } else {
            kept.push_back(item);
            // Look a little further for short sequences that still fit, then stop.
            if kept.len() >= 64 || batch.len() >= max_size {
                break;
            }
        }
    }
    while let Some(item) = kept.pop_back() {
        queue.push_front(item);
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(job: u64, len: usize) -> Item {
        Item {
            job,
            index: 0,
            ids: vec![1; len],
        }
    }

    #[test]
    fn respects_token_budget_and_order() {
        let mut q: VecDeque<Item> = [item(1, 10), item(2, 10), item(3, 100), item(4, 10)].into();
        let b = take_batch(&mut q, 40, 64);
        let jobs: Vec<u64> = b.iter().map(|i| i.job).collect();
        assert_eq!(jobs, vec![1, 2, 4]);
        let rest: Vec<u64> = q.iter().map(|i| i.job).collect();
        assert_eq!(rest, vec![3]);
    }

    #[test]
    fn oversize_first_item_still_runs_alone() {
        let mut q: VecDeque<Item> = [item(1, 512), item(2, 5)].into();
        let b = take_batch(&mut q, 100, 64);
        assert_eq!(b.len(), 1);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn respects_max_size() {
        let mut q: VecDeque<Item> = (0..10).map(|j| item(j, 1)).collect();
        assert_eq!(take_batch(&mut q, 1000, 4).len(), 4);
        assert_eq!(q.len(), 6);
        assert_eq!(q.front().map(|i| i.job), Some(4));
    }
}
