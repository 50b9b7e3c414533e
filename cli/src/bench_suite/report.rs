//! The suite's figures as data: a [`Measure`] is one line of the table (the
//! BareFlow sample, the baseline's sample, which way is better, the target),
//! from which the advantage ratio and the verdict follow. Also the history
//! record (one JSON file per run) and the SVG charts drawn from all of them.

use crate::bench::Stats;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which way a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
}

/// What the table says about a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    #[serde(rename = "met")]
    Met,
    #[serde(rename = "MISSED")]
    Missed,
    /// No target for this figure.
    #[serde(rename = "info")]
    Info,
    /// A side has no (valid) sample, so the target cannot be judged: also a miss.
    #[serde(rename = "NO DATA")]
    NoData,
}

impl Verdict {
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "MISSED",
            Verdict::Info => "-",
            Verdict::NoData => "NO DATA",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    /// The suite row (`boot`, `footprint`, `http`, `llm`, ...).
    pub row: String,
    /// What is measured, e.g. `microvm: start -> first output`.
    pub name: String,
    pub unit: String,
    pub better: Better,
    /// BareFlow's samples, in run order.
    pub bareflow: Vec<f64>,
    /// The baseline's samples (the Linux guest unless `baseline_name` says otherwise).
    pub baseline: Vec<f64>,
    pub baseline_name: String,
    /// The least advantage (BareFlow over the baseline, as a factor) that meets the target.
    pub target: Option<f64>,
    /// Anything a reader needs to know (where a figure comes from, failures).
    pub note: String,
    /// The samples by A/B round: `[BareFlow, baseline]`, `None` where that side failed.
    #[serde(default)]
    pub rounds: Vec<[Option<f64>; 2]>,
}

impl Measure {
    pub fn new(row: &str, name: &str, unit: &str, better: Better, target: Option<f64>) -> Measure {
        Measure {
            row: row.into(),
            name: name.into(),
            unit: unit.into(),
            better,
            bareflow: Vec::new(),
            baseline: Vec::new(),
            baseline_name: "Linux guest".into(),
            target,
            note: String::new(),
            rounds: Vec::new(),
        }
    }

    /// Adds a sample of round `round` (0-based) for BareFlow (`bareflow`) or the baseline.
    pub fn push(&mut self, round: usize, bareflow: bool, v: f64) {
        if self.rounds.len() <= round {
            self.rounds.resize(round + 1, [None, None]);
        }
        self.rounds[round][usize::from(!bareflow)] = Some(v);
        if bareflow { self.bareflow.push(v) } else { self.baseline.push(v) }
    }

    /// The median over rounds of each round's own advantage (both sides ran in
    /// the same minute, so a slow spell of the shared host hits both): `None`
    /// without a round where both sides have a sample.
    pub fn paired_advantage(&self) -> Option<f64> {
        let ratios: Vec<f64> = self
            .rounds
            .iter()
            .filter_map(|r| match (r[0]?, r[1]?) {
                (b, l) if self.better == Better::Lower => Some(l / b),
                (b, l) => Some(b / l),
            })
            .filter(|x| x.is_finite() && *x > 0.0)
            .collect();
        Stats::of(&ratios).map(|s| s.median)
    }

    /// BareFlow's advantage as a factor > 1 when BareFlow is better: baseline /
    /// BareFlow for lower-is-better figures, BareFlow / baseline otherwise (medians).
    pub fn advantage(&self) -> Option<f64> {
        let b = Stats::of(&self.bareflow)?.median;
        let l = Stats::of(&self.baseline)?.median;
        let r = match self.better {
            Better::Lower => l / b,
            Better::Higher => b / l,
        };
        (r.is_finite() && r > 0.0).then_some(r)
    }

    pub fn verdict(&self) -> Verdict {
        match (self.target, self.advantage()) {
            (None, _) => Verdict::Info,
            (Some(_), None) => Verdict::NoData,
            (Some(t), Some(a)) if a >= t => Verdict::Met,
            (Some(_), Some(_)) => Verdict::Missed,
        }
    }
}

fn fmt_num(x: f64) -> String {
    let a = x.abs();
    if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn fmt_sample(v: &[f64]) -> String {
    match Stats::of(v) {
        Some(s) if v.len() > 1 => format!("{} ({}-{})", fmt_num(s.median), fmt_num(s.min), fmt_num(s.max)),
        Some(s) => fmt_num(s.median),
        None => "failed".into(),
    }
}

/// The table, one line per measure, then the notes.
pub fn table(measures: &[Measure]) -> String {
    let head = ["row", "measure", "unit", "BareFlow med (min-max)", "baseline med (min-max)", "advantage", "paired", "target", "verdict"];
    let mut rows: Vec<[String; 9]> = vec![head.map(String::from)];
    for m in measures {
        rows.push([
            m.row.clone(),
            m.name.clone(),
            m.unit.clone(),
            fmt_sample(&m.bareflow),
            fmt_sample(&m.baseline),
            m.advantage().map_or("-".into(), |a| format!("{}x", fmt_num(a))),
            m.paired_advantage().map_or("-".into(), |a| format!("{}x", fmt_num(a))),
            m.target.map_or("-".into(), |t| format!(">= {t}x")),
            m.verdict().text().into(),
        ]);
    }
    let mut widths = [0usize; 9];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    // One line per (row, text): measures of a row that share a note share its line.
    let mut notes: Vec<(String, Vec<String>, String)> = Vec::new();
    for m in measures.iter().filter(|m| !m.note.is_empty() || m.baseline_name != "Linux guest") {
        let base = if m.baseline_name != "Linux guest" { format!("baseline: {}. ", m.baseline_name) } else { String::new() };
        let text = format!("{base}{}", m.note);
        match notes.iter_mut().find(|(row, _, t)| *row == m.row && *t == text) {
            Some((_, names, _)) => names.push(m.name.clone()),
            None => notes.push((m.row.clone(), vec![m.name.clone()], text)),
        }
    }
    let notes: Vec<String> = notes.into_iter().map(|(row, names, text)| format!("  {row} / {}: {text}", names.join("; "))).collect();
    if !notes.is_empty() {
        out.push_str("notes:\n");
        for n in notes {
            out.push_str(n.trim_end());
            out.push('\n');
        }
    }
    out
}

/// One run of the suite, as stored in `bench/history/suite/<date>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub date: String,
    /// CPU model and count, memory.
    pub machine: String,
    pub host_kernel: String,
    pub qemu: String,
    pub accel: String,
    pub linux_package: String,
    /// A/B rounds per row.
    pub runs: usize,
    /// The host's 1-minute load average when the run started and ended: the
    /// other work sharing the machine (figures of a loaded run are noisier).
    #[serde(default)]
    pub load: Option<(f64, f64)>,
    pub measures: Vec<RecordedMeasure>,
}

/// A measure with its derived figures written out (so the file reads on its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedMeasure {
    #[serde(flatten)]
    pub measure: Measure,
    pub bareflow_median: Option<f64>,
    pub baseline_median: Option<f64>,
    pub advantage: Option<f64>,
    /// The median of the rounds' own advantages (see [`Measure::paired_advantage`]).
    #[serde(default)]
    pub paired_advantage: Option<f64>,
    pub verdict: Verdict,
}

impl RecordedMeasure {
    pub fn of(m: &Measure) -> RecordedMeasure {
        RecordedMeasure {
            measure: m.clone(),
            bareflow_median: Stats::of(&m.bareflow).map(|s| s.median),
            baseline_median: Stats::of(&m.baseline).map(|s| s.median),
            advantage: m.advantage(),
            paired_advantage: m.paired_advantage(),
            verdict: m.verdict(),
        }
    }
}

/// `2026-12-02T17:05:09Z` -> `2026-12-02T17-05-09Z` (no `:` in file names).
pub fn file_stem(date: &str) -> String {
    date.replace(':', "-")
}

/// Writes `r` as `dir/<date>.json` (a second run in the same second gets a suffix); returns the path.
pub fn write_record(dir: &Path, r: &Record) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stem = file_stem(&r.date);
    let mut path = dir.join(format!("{stem}.json"));
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = dir.join(format!("{stem}-{n}.json"));
    }
    let text = serde_json::to_string_pretty(r)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Every record in `dir`, oldest first (file names sort by date). Files that do
/// not parse are skipped with a warning, not fatal: history must not block a run.
pub fn read_records(dir: &Path) -> Result<Vec<Record>> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        match std::fs::read_to_string(&p).map_err(anyhow::Error::from).and_then(|s| Ok(serde_json::from_str::<Record>(&s)?)) {
            Ok(r) => out.push(r),
            Err(e) => eprintln!("bench: skipping {} in the charts: {e:#}", p.display()),
        }
    }
    Ok(out)
}

/// A chart's series: one line per measure name, (run index, advantage) points,
/// with the measure's target.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub target: Option<f64>,
    pub points: Vec<(usize, f64)>,
}

/// The advantage of each measure of `row` over the records, in record order.
pub fn series(records: &[Record], row: &str) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        for m in r.measures.iter().filter(|m| m.measure.row == row) {
            let Some(a) = m.advantage else { continue };
            let idx = match out.iter().position(|s| s.name == m.measure.name) {
                Some(k) => k,
                None => {
                    out.push(Series { name: m.measure.name.clone(), target: m.measure.target, points: Vec::new() });
                    out.len() - 1
                }
            };
            out[idx].points.push((i + 1, a));
            out[idx].target = m.measure.target;
        }
    }
    out
}

/// Draws `row`'s advantage over time as an SVG (text uses the viewer's fonts: no font files needed).
pub fn write_chart(path: &Path, row: &str, records: &[Record]) -> Result<bool> {
    use plotters::prelude::*;
    let all = series(records, row);
    if all.is_empty() {
        return Ok(false);
    }
    let n = records.len().max(2);
    let ymax = all
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1).chain(s.target))
        .fold(1.0f64, f64::max)
        * 1.5; // headroom for the legend
    let first = records.first().map_or("", |r| r.date.as_str());
    let last = records.last().map_or("", |r| r.date.as_str());
    let machine = records.last().map_or("", |r| r.machine.as_str());
    let map_err = |e: DrawingAreaErrorKind<_>| anyhow::anyhow!("drawing {}: {e:?}", path.display());
    {
        let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(map_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{row}: BareFlow's advantage over the baseline (x; dashed: targets)"), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.5f64..(n as f64 + 0.5), 0f64..ymax)
            .map_err(map_err)?;
        chart
            .configure_mesh()
            .x_desc(format!("run of `cargo bareflow bench` ({first} .. {last}; {machine})"))
            .y_desc("advantage (x)")
            .x_labels(n.min(12))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(map_err)?;
        const COLORS: [RGBColor; 8] = [
            RGBColor(31, 119, 180),
            RGBColor(214, 39, 40),
            RGBColor(44, 160, 44),
            RGBColor(255, 127, 14),
            RGBColor(148, 103, 189),
            RGBColor(140, 86, 75),
            RGBColor(0, 0, 0),
            RGBColor(23, 190, 207),
        ];
        for (k, s) in all.iter().enumerate() {
            let color = COLORS[k % COLORS.len()].to_rgba();
            let pts: Vec<(f64, f64)> = s.points.iter().map(|&(i, a)| (i as f64, a)).collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(map_err)?
                .label(match s.target {
                    Some(t) => format!("{} (target >= {t}x)", s.name),
                    None => s.name.clone(),
                })
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(map_err)?;
            if let Some(t) = s.target {
                // The target as a dashed line in the series' colour.
                let dashes = (0..n * 4).map(|i| {
                    let x0 = 0.5 + i as f64 * 0.25;
                    PathElement::new(vec![(x0, t), (x0 + 0.15, t)], color.stroke_width(1))
                });
                chart.draw_series(dashes).map_err(map_err)?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(map_err)?;
        root.present().map_err(map_err)?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(better: Better, bf: &[f64], base: &[f64], target: Option<f64>) -> Measure {
        let mut m = Measure::new("boot", "microvm: first output", "ms", better, target);
        m.bareflow = bf.to_vec();
        m.baseline = base.to_vec();
        m
    }

    #[test]
    fn advantage_follows_the_better_direction_and_medians() {
        // Lower is better: 8000 ms vs 40 ms is a 200x advantage.
        assert_eq!(m(Better::Lower, &[40.0, 50.0, 30.0], &[8000.0, 9000.0, 7000.0], None).advantage(), Some(200.0));
        // Higher is better: 300 req/s vs 150 is 2x.
        assert_eq!(m(Better::Higher, &[300.0], &[150.0], None).advantage(), Some(2.0));
        assert_eq!(m(Better::Higher, &[], &[150.0], None).advantage(), None);
        assert_eq!(m(Better::Higher, &[1.0], &[0.0], None).advantage(), None);
    }

    #[test]
    fn verdicts_never_hide_a_miss() {
        assert_eq!(m(Better::Lower, &[40.0], &[8000.0], Some(20.0)).verdict(), Verdict::Met);
        assert_eq!(m(Better::Lower, &[400.0], &[8000.0], Some(20.0)).verdict(), Verdict::Met);
        assert_eq!(m(Better::Lower, &[401.0], &[8000.0], Some(20.0)).verdict(), Verdict::Missed);
        assert_eq!(m(Better::Higher, &[100.0], &[100.0], Some(1.5)).verdict(), Verdict::Missed);
        assert_eq!(m(Better::Higher, &[], &[100.0], Some(1.5)).verdict(), Verdict::NoData);
        assert_eq!(m(Better::Higher, &[1.0], &[100.0], None).verdict(), Verdict::Info);
        let t = table(&[m(Better::Higher, &[100.0], &[100.0], Some(1.5)), m(Better::Higher, &[], &[1.0], Some(1.0))]);
        assert!(t.contains("MISSED") && t.contains("NO DATA") && t.contains("failed"), "{t}");
    }

    #[test]
    fn paired_advantage_is_the_median_of_each_rounds_ratio() {
        let mut x = Measure::new("llm", "tok/s", "tok/s", Better::Higher, Some(1.0));
        // Round 1 on a quiet host, round 2 on a loaded one, round 3 the baseline failed.
        x.push(0, true, 300.0);
        x.push(0, false, 250.0);
        x.push(1, false, 120.0);
        x.push(1, true, 150.0);
        x.push(2, true, 310.0);
        assert_eq!(x.rounds, vec![[Some(300.0), Some(250.0)], [Some(150.0), Some(120.0)], [Some(310.0), None]]);
        assert_eq!((x.bareflow.len(), x.baseline.len()), (3, 2));
        // Ratios 1.2 and 1.25: median 1.225; the unpaired medians give 300 / 185.
        assert!((x.paired_advantage().unwrap() - 1.225).abs() < 1e-9, "{:?}", x.paired_advantage());
        assert!((x.advantage().unwrap() - 300.0 / 185.0).abs() < 1e-9);
        let mut y = Measure::new("boot", "ms", "ms", Better::Lower, None);
        y.push(0, true, 50.0);
        y.push(0, false, 5000.0);
        assert_eq!(y.paired_advantage(), Some(100.0));
        assert_eq!(Measure::new("a", "b", "c", Better::Lower, None).paired_advantage(), None);
    }

    #[test]
    fn table_aligns_columns_and_lists_notes() {
        let mut a = m(Better::Lower, &[40.0, 42.0], &[8000.0, 8100.0], Some(20.0));
        a.note = "QEMU start to the app's first line".into();
        let t = table(&[a]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("row") && lines[0].contains("verdict"), "{t}");
        let col = lines[0].find("advantage").unwrap();
        assert_eq!(&lines[1][col..col + 6], "196.3x", "{t}");
        assert!(lines[1].contains("41.00 (40.00-42.00)") && lines[1].contains(">= 20x") && lines[1].ends_with("met"), "{t}");
        assert!(t.contains("notes:\n  boot / microvm: first output: QEMU start"), "{t}");
        let mut b = m(Better::Lower, &[1.0], &[2.0], None);
        b.name = "q35: first output".into();
        b.note = "shared".into();
        let mut c = b.clone();
        c.name = "pc: first output".into();
        let t = table(&[b, c]);
        assert!(t.contains("  boot / q35: first output; pc: first output: shared\n"), "{t}");
        assert_eq!(t.matches("shared").count(), 1, "{t}");
    }

    fn record(date: &str, adv_bf: f64) -> Record {
        Record {
            date: date.into(),
            machine: "2 x AMD EPYC".into(),
            host_kernel: "6.1".into(),
            qemu: "7.2".into(),
            accel: "tcg".into(),
            linux_package: "linux-image-6.1.0-48-amd64".into(),
            runs: 1,
            load: Some((0.5, 1.25)),
            measures: vec![
                RecordedMeasure::of(&m(Better::Lower, &[adv_bf], &[8000.0], Some(20.0))),
                RecordedMeasure::of(&{
                    let mut x = m(Better::Higher, &[10.0], &[5.0], Some(1.5));
                    x.row = "http".into();
                    x
                }),
            ],
        }
    }

    #[test]
    fn history_round_trips_and_charts_are_svg() {
        let dir = std::env::temp_dir().join(format!("bareflow-suite-hist-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p1 = write_record(&dir, &record("2026-12-01T10:00:00Z", 80.0)).unwrap();
        let p2 = write_record(&dir, &record("2026-12-02T10:00:00Z", 40.0)).unwrap();
        let p3 = write_record(&dir, &record("2026-12-02T10:00:00Z", 40.0)).unwrap();
        assert!(p1.ends_with("2026-12-01T10-00-00Z.json") && p3.ends_with("2026-12-02T10-00-00Z-2.json"), "{p3:?}");
        assert_ne!(p2, p3);
        std::fs::write(dir.join("broken.json"), "{").unwrap();
        // A record written before `load` existed still reads.
        let mut old = serde_json::to_value(record("2026-11-30T10:00:00Z", 80.0)).unwrap();
        old.as_object_mut().unwrap().remove("load");
        std::fs::write(dir.join("2026-11-30T10-00-00Z.json"), old.to_string()).unwrap();
        assert_eq!(read_records(&dir).unwrap()[0].load, None);
        std::fs::remove_file(dir.join("2026-11-30T10-00-00Z.json")).unwrap();
        let recs = read_records(&dir).unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0], record("2026-12-01T10:00:00Z", 80.0));
        let text = std::fs::read_to_string(&p1).unwrap();
        assert!(text.contains("\"verdict\": \"met\"") && text.contains("\"advantage\": 100.0"), "{text}");
        let s = series(&recs, "boot");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].points, vec![(1, 100.0), (2, 200.0), (3, 200.0)]);
        assert_eq!(s[0].target, Some(20.0));
        assert!(series(&recs, "llm").is_empty());
        let svg = dir.join("boot.svg");
        assert!(write_chart(&svg, "boot", &recs).unwrap());
        let body = std::fs::read_to_string(&svg).unwrap();
        assert!(body.starts_with("<svg") && body.contains("<polyline") && body.contains("microvm: first output"), "{body}");
        assert!(!write_chart(&dir.join("none.svg"), "llm", &recs).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
