//! `$sample`.

use bson::Document;

/// `$sample`: `n` documents picked at random (all of them, shuffled, when fewer).
pub(super) fn sample(mut docs: Vec<Document>, n: usize) -> Vec<Document> {
    use std::hash::{BuildHasher, Hasher};
    let mut state = std::collections::hash_map::RandomState::new().build_hasher();
    state.write_usize(docs.len());
    let mut seed = state.finish() | 1;
    let mut next = move || {
        // xorshift64: enough for sampling test data, not for anything secret.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let take = n.min(docs.len());
    for i in 0..take {
        let j = i + (next() % (docs.len() - i) as u64) as usize;
        docs.swap(i, j);
    }
    docs.truncate(take);
    docs
}
