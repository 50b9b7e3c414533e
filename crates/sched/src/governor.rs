//! The adaptive I/O governor's policy: when a device should be polled (war
//! mode: the owning thread polls its queues, interrupts masked) and when it
//! should sleep on interrupts (peace mode: the CPU halts when idle).
//!
//! Fed with the device's event count per window of time; switches to polling
//! after `war_after` consecutive windows above `high` events per second, and
//! back to interrupts after `peace_after` consecutive windows below `low`
//! (hysteresis: `low < high`, and the counts of windows).

/// The two modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Interrupt-driven; the CPU halts when idle.
    Peace,
    /// The owning thread polls; interrupts masked.
    War,
}

/// Thresholds.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Length of a measuring window, ns.
    pub window_ns: u64,
    /// Events per second above which a window counts as busy.
    pub high: u64,
    /// Events per second below which a window counts as quiet.
    pub low: u64,
    /// Busy windows in a row before polling.
    pub war_after: u32,
    /// Quiet windows in a row before going back to interrupts.
    pub peace_after: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config { window_ns: 10_000_000, high: 2_000, low: 200, war_after: 3, peace_after: 20 }
    }
}

/// Counters, visible in stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Switches to war mode.
    pub to_war: u64,
    /// Switches to peace mode.
    pub to_peace: u64,
    /// Events counted in peace mode.
    pub events_peace: u64,
    /// Events counted in war mode.
    pub events_war: u64,
}

/// The governor's state for one device.
#[derive(Clone, Debug)]
pub struct Governor {
    cfg: Config,
    mode: Mode,
    window_start: u64,
    window_events: u64,
    busy_run: u32,
    quiet_run: u32,
    /// Counters.
    pub stats: Stats,
}

impl Governor {
    /// Starts in peace mode at `now`.
    pub fn new(cfg: Config, now: u64) -> Self {
        Governor { cfg, mode: Mode::Peace, window_start: now, window_events: 0, busy_run: 0, quiet_run: 0, stats: Stats::default() }
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Records `n` events (packets, completions) at `now`; returns the mode to
    /// use from now on. Call it also with `n = 0` to let quiet time count.
    pub fn record(&mut self, n: u64, now: u64) -> Mode {
        match self.mode {
            Mode::Peace => self.stats.events_peace += n,
            Mode::War => self.stats.events_war += n,
        }
        self.window_events += n;
        let elapsed = now.saturating_sub(self.window_start) / self.cfg.window_ns;
        if elapsed == 0 {
            return self.mode;
        }
        // The window that just closed holds the events; any further elapsed
        // windows were empty, hence quiet.
        let rate = self.window_events * 1_000_000_000 / self.cfg.window_ns;
        self.window_events = 0;
        self.window_start += elapsed * self.cfg.window_ns;
        if rate >= self.cfg.high {
            self.busy_run += 1;
            self.quiet_run = 0;
        } else if rate <= self.cfg.low {
            self.quiet_run = self.quiet_run.saturating_add(1);
            self.busy_run = 0;
        } else {
            self.busy_run = 0;
            self.quiet_run = 0;
        }
        if elapsed > 1 {
            self.busy_run = 0;
            self.quiet_run = self.quiet_run.saturating_add(u32::try_from(elapsed - 1).unwrap_or(u32::MAX));
        }
        match self.mode {
            Mode::Peace if self.busy_run >= self.cfg.war_after => {
                self.mode = Mode::War;
                self.stats.to_war += 1;
                self.busy_run = 0;
            }
            Mode::War if self.quiet_run >= self.cfg.peace_after => {
                self.mode = Mode::Peace;
                self.stats.to_peace += 1;
                self.quiet_run = 0;
            }
            _ => {}
        }
        self.mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn feed(g: &mut Governor, from: u64, to: u64, per_ms: u64) -> u64 {
        let mut t = from;
        while t < to {
            g.record(per_ms, t);
            t += MS;
        }
        t
    }

    #[test]
    fn scripted_load_switches_both_ways_with_hysteresis() {
        let mut g = Governor::new(Config::default(), 0);
        // Quiet: stays in peace.
        let t = feed(&mut g, 0, 100 * MS, 0);
        assert_eq!(g.mode(), Mode::Peace);
        // 10 events per ms = 10,000/s > high: war after 3 busy windows (~30-40 ms).
        let t = feed(&mut g, t, t + 25 * MS, 10);
        assert_eq!(g.mode(), Mode::Peace, "two busy windows are not enough");
        let t = feed(&mut g, t, t + 20 * MS, 10);
        assert_eq!(g.mode(), Mode::War);
        // Middling load (between low and high): no change either way.
        let t = feed(&mut g, t, t + 500 * MS, 1);
        assert_eq!(g.mode(), Mode::War);
        // Quiet for 20 windows: back to peace.
        let t = feed(&mut g, t, t + 150 * MS, 0);
        assert_eq!(g.mode(), Mode::War, "15 quiet windows are not enough");
        feed(&mut g, t, t + 100 * MS, 0);
        assert_eq!(g.mode(), Mode::Peace);
        assert_eq!((g.stats.to_war, g.stats.to_peace), (1, 1));
        assert!(g.stats.events_war > 0 && g.stats.events_peace > 0);
    }

    #[test]
    fn a_long_idle_gap_is_one_quiet_stretch() {
        let mut g = Governor::new(Config::default(), 0);
        feed(&mut g, 0, 50 * MS, 10);
        assert_eq!(g.mode(), Mode::War);
        g.record(0, 3_600_000 * MS); // an hour later
        assert_eq!(g.mode(), Mode::Peace);
    }
}
