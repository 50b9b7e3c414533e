//! The least memory a guest runs with: a bisection kept as a value, so two of
//! them (BareFlow and Linux) can be stepped in turn, A/B/A/B, and tested without a guest.

/// Bisection for the least `m` in `lo..=hi` with `ok(m)`, assuming `ok` is
/// monotone (more memory never hurts). `hi` is tried first: if it fails, there
/// is no answer in the range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bisect {
    /// The largest value known (or assumed, `lo - 1`) to fail.
    bad: u32,
    /// The least value known to pass; `None` until `hi` passed.
    good: Option<u32>,
    hi: u32,
    /// `hi` failed: no answer.
    failed_hi: bool,
    /// Probes so far: (value, passed).
    pub probes: Vec<(u32, bool)>,
}

impl Bisect {
    /// # Panics
    /// If `lo` is 0 or `lo > hi` (a programming error).
    pub fn new(lo: u32, hi: u32) -> Bisect {
        assert!(lo >= 1 && lo <= hi, "bisection range {lo}..={hi}");
        Bisect { bad: lo - 1, good: None, hi, failed_hi: false, probes: Vec::new() }
    }

    /// The next value to try, or `None` when done.
    pub fn next(&self) -> Option<u32> {
        if self.failed_hi {
            return None;
        }
        match self.good {
            None => Some(self.hi),
            Some(g) if g - self.bad > 1 => Some(self.bad + (g - self.bad) / 2),
            Some(_) => None,
        }
    }

    /// Records the outcome of trying `m` (the value [`Bisect::next`] gave).
    pub fn record(&mut self, m: u32, ok: bool) {
        self.probes.push((m, ok));
        match (ok, self.good) {
            (true, _) => self.good = Some(self.good.map_or(m, |g| g.min(m))),
            (false, None) => self.failed_hi = true,
            (false, Some(_)) => self.bad = self.bad.max(m),
        }
    }

    /// The answer once [`Bisect::next`] is `None`: the least passing value, or
    /// `None` if even `hi` failed.
    pub fn result(&self) -> Option<u32> {
        if self.failed_hi { None } else { self.good }
    }

    /// Runs the whole bisection with `ok`.
    pub fn run(mut self, ok: &mut dyn FnMut(u32) -> bool) -> Bisect {
        while let Some(m) = self.next() {
            let r = ok(m);
            self.record(m, r);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_threshold_exactly_for_every_value() {
        for threshold in 1..=64 {
            let b = Bisect::new(1, 64).run(&mut |m| m >= threshold);
            assert_eq!(b.result(), Some(threshold), "threshold {threshold}: {:?}", b.probes);
            // hi, then at most ceil(log2(64)) = 6 more probes.
            assert!(b.probes.len() <= 7, "{:?}", b.probes);
            assert_eq!(b.probes[0], (64, true));
        }
    }

    #[test]
    fn no_answer_when_the_top_fails() {
        let b = Bisect::new(8, 512).run(&mut |_| false);
        assert_eq!(b.result(), None);
        assert_eq!(b.probes, vec![(512, false)]);
    }

    #[test]
    fn the_bottom_itself_can_be_the_answer() {
        let b = Bisect::new(4, 100).run(&mut |_| true);
        assert_eq!(b.result(), Some(4));
        let b = Bisect::new(5, 5).run(&mut |_| true);
        assert_eq!(b.result(), Some(5));
        assert_eq!(b.probes, vec![(5, true)]);
    }

    #[test]
    fn two_bisections_step_in_turn() {
        let mut a = Bisect::new(1, 256);
        let mut l = Bisect::new(1, 256);
        let mut order = Vec::new();
        loop {
            let (na, nl) = (a.next(), l.next());
            if na.is_none() && nl.is_none() {
                break;
            }
            if let Some(m) = na {
                order.push('A');
                a.record(m, m >= 3);
            }
            if let Some(m) = nl {
                order.push('B');
                l.record(m, m >= 90);
            }
        }
        assert_eq!((a.result(), l.result()), (Some(3), Some(90)));
        assert!(order.starts_with(&['A', 'B', 'A', 'B']), "{order:?}");
    }
}
