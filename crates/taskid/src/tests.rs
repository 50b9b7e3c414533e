//! Tests of the ID generator. Keys are fixed here for reproducibility; the
//! properties hold for any key.

extern crate std;
use std::collections::HashSet;
use std::vec::Vec;

use super::*;

const KEY_A: [u8; 16] = *b"bareflow-test-k1";
const KEY_B: [u8; 16] = *b"bareflow-test-k2";

#[test]
fn a_million_ids_are_distinct() {
    let g = TaskIdGen::new(KEY_A);
    let mut seen = HashSet::with_capacity(1 << 20);
    for _ in 0..1_000_000 {
        assert!(seen.insert(g.next()), "duplicate task ID");
    }
    assert_eq!(g.issued(), 1_000_000);
}

#[test]
fn decode_returns_the_creation_order() {
    let g = TaskIdGen::new(KEY_A);
    let ids: Vec<TaskId> = (0..10_000).map(|_| g.next()).collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(g.decode(*id), i as u64);
    }
    // The permutation is a bijection on arbitrary values too, edges included.
    let p = Permutation::new(KEY_B);
    for x in [0, 1, u64::MAX, u64::MAX - 1, 1 << 32, 0xdead_beef_0000_0001] {
        assert_eq!(p.inverse(p.forward(x)), x);
        assert_eq!(p.forward(p.inverse(x)), x);
    }
}

#[test]
fn two_keys_give_different_sequences() {
    let a = TaskIdGen::new(KEY_A);
    let b = TaskIdGen::new(KEY_B);
    let sa: Vec<TaskId> = (0..1000).map(|_| a.next()).collect();
    let sb: Vec<TaskId> = (0..1000).map(|_| b.next()).collect();
    let same = sa.iter().zip(&sb).filter(|(x, y)| x == y).count();
    assert_eq!(same, 0, "keys A and B agree on {same} of 1000 positions");
    // One flipped key bit changes the sequence too.
    let mut key_c = KEY_A;
    key_c[15] ^= 1;
    let c = TaskIdGen::new(key_c);
    assert_ne!(c.next(), TaskIdGen::new(KEY_A).next());
}

#[test]
fn ids_are_not_sequential_and_bits_look_random() {
    let g = TaskIdGen::new(KEY_A);
    let ids: Vec<u64> = (0..10_000).map(|_| g.next().0).collect();
    let steps_of_one = ids
        .windows(2)
        .filter(|w| w[1].wrapping_sub(w[0]) == 1)
        .count();
    assert_eq!(steps_of_one, 0);
    let increasing = ids.windows(2).filter(|w| w[1] > w[0]).count();
    // About half the steps go up for a random-looking sequence (binomial, sd 50).
    assert!(
        (4_500..5_500).contains(&increasing),
        "{increasing} of 9999 steps increase"
    );
    // Every bit is set in about half the IDs (sd 50 of 10,000).
    for bit in 0..64 {
        let ones = ids.iter().filter(|&&x| x >> bit & 1 == 1).count();
        assert!(
            (4_600..5_400).contains(&ones),
            "bit {bit} is set in {ones} of 10000 IDs"
        );
    }
    // Neighbouring counters differ in about 32 bits (avalanche).
    let avg: f64 = ids
        .windows(2)
        .map(|w| (w[0] ^ w[1]).count_ones() as f64)
        .sum::<f64>()
        / 9_999.0;
    assert!(
        (31.0..33.0).contains(&avg),
        "neighbours differ in {avg} bits on average"
    );
}

#[test]
fn threads_share_one_generator_without_duplicates() {
    let g = TaskIdGen::new(KEY_B);
    let per_thread: Vec<Vec<TaskId>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| (0..20_000).map(|_| g.next()).collect::<Vec<_>>()))
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect()
    });
    let all: HashSet<TaskId> = per_thread.iter().flatten().copied().collect();
    assert_eq!(all.len(), 80_000);
    let mut orders: Vec<u64> = all.iter().map(|&id| g.decode(id)).collect();
    orders.sort_unstable();
    assert_eq!(orders, (0..80_000).collect::<Vec<_>>());
}

#[test]
fn exhaustion_is_an_error_not_a_wrap() {
    let g = TaskIdGen {
        perm: Permutation::new(KEY_A),
        counter: AtomicU64::new(u64::MAX - 1),
    };
    let last = g.try_next().expect("one ID is left");
    assert_eq!(g.decode(last), u64::MAX - 1);
    assert_eq!(g.try_next(), Err(Exhausted));
    assert_eq!(g.try_next(), Err(Exhausted));
}

#[test]
fn debug_output_does_not_leak_the_key() {
    let text = std::format!("{:?}", TaskIdGen::new(KEY_A));
    assert!(!text.contains(&std::format!("{}", u64::from_le_bytes(*b"bareflow"))));
    assert!(text.contains("Permutation { .. }"));
}
