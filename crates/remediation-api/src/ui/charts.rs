//! The dashboard's charts, drawn on the server as SVG geometry the templates print (escaped,
//! like every other value): outcomes per day as stacked bars, and time to remediation per day
//! as p50 and p90 bars. Pure functions of the numbers, so they are tested without a page.

use remediation_core::State;
use time::Date;

/// The drawing's size, in SVG user units (the page scales it to its width).
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
/// Room for the y axis labels on the left, the x labels below and the top tick's label.
const LEFT: f64 = 44.0;
/// Room on the right for the last day's label.
const RIGHT: f64 = 16.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 12.0;

/// The outcomes the first chart stacks, bottom first, with their CSS class suffix.
pub(super) const OUTCOMES: [State; 6] =
    [State::Completed, State::RolledBack, State::Failed, State::Rejected, State::Cancelled, State::Expired];

/// One drawn rectangle, with the tooltip (`<title>`) it carries.
pub(super) struct Bar {
    pub(super) x: f64,
    pub(super) y: f64,
    pub(super) w: f64,
    pub(super) h: f64,
    pub(super) class: String,
    pub(super) title: String,
}

/// A label at a position.
pub(super) struct Label {
    pub(super) x: f64,
    pub(super) y: f64,
    pub(super) text: String,
}

/// One entry of a chart's legend.
pub(super) struct Legend {
    pub(super) class: String,
    pub(super) text: String,
}

/// A chart ready to print.
pub(super) struct Chart {
    pub(super) id: &'static str,
    pub(super) title: String,
    pub(super) width: f64,
    pub(super) height: f64,
    /// The left and right edges and the bottom of the plot, for the axis lines.
    pub(super) left: f64,
    pub(super) right: f64,
    pub(super) base: f64,
    pub(super) bars: Vec<Bar>,
    /// Horizontal grid lines with their label (`y` is the line's).
    pub(super) ticks: Vec<Label>,
    pub(super) days: Vec<Label>,
    pub(super) legend: Vec<Legend>,
    /// Nothing to draw in the period.
    pub(super) empty: bool,
}

/// One day of the outcomes chart: how many actions reached each outcome that day.
pub(super) struct DayOutcomes {
    pub(super) day: Date,
    pub(super) counts: [u64; OUTCOMES.len()],
}

/// One day of the time-to-remediation chart.
pub(super) struct DayTtr {
    pub(super) day: Date,
    /// Seconds from suggestion to completion of each action completed that day.
    pub(super) samples: Vec<f64>,
    /// The identity of the slowest of them.
    pub(super) slowest: Option<String>,
}

/// One decimal: enough for a drawing, short in the page.
fn r(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The smallest 1, 2 or 5 times a power of ten at or above `v` (at least 1).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    let mut step = 1.0;
    loop {
        for m in [1.0, 2.0, 5.0] {
            if m * step >= v {
                return m * step;
            }
        }
        step *= 10.0;
    }
}

/// The nearest-rank `q` quantile of sorted `values`.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted.get(rank - 1).copied()
}

/// `12-07`.
fn month_day(d: Date) -> String {
    format!("{:02}-{:02}", u8::from(d.month()), d.day())
}

/// A chart's frame: the plot's geometry, grid lines at 0, half and `max` labelled by `label`,
/// and a date under every fifth day (and the last).
fn frame(id: &'static str, title: String, days: &[Date], max: f64, label: impl Fn(f64) -> String) -> Chart {
    let base = HEIGHT - BOTTOM;
    let plot = base - TOP;
    let ticks = [0.0, max / 2.0, max]
        .into_iter()
        .map(|v| Label { x: LEFT - 6.0, y: r(base - plot * v / max), text: label(v) })
        .collect();
    let slot = (WIDTH - LEFT - RIGHT) / days.len().max(1) as f64;
    let last = days.len().saturating_sub(1);
    let day_labels = days
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 == 0 || *i == last)
        .map(|(i, d)| Label { x: r(LEFT + slot * (i as f64 + 0.5)), y: HEIGHT - 6.0, text: month_day(*d) })
        .collect();
    Chart {
        id,
        title,
        width: WIDTH,
        height: HEIGHT,
        left: LEFT,
        right: WIDTH - RIGHT,
        base,
        bars: Vec::new(),
        ticks,
        days: day_labels,
        legend: Vec::new(),
        empty: true,
    }
}

/// Stacked bars of the outcomes reached per day.
pub(super) fn outcomes(days: &[DayOutcomes]) -> Chart {
    let dates: Vec<Date> = days.iter().map(|d| d.day).collect();
    let most = days.iter().map(|d| d.counts.iter().sum::<u64>()).max().unwrap_or(0);
    let max = nice_ceiling(most as f64);
    let mut chart = frame("chart-outcomes", "Outcomes per day".to_owned(), &dates, max, |v| format!("{v:.0}"));
    let base = chart.base;
    let plot = base - TOP;
    let slot = (WIDTH - LEFT - RIGHT) / days.len().max(1) as f64;
    for (i, day) in days.iter().enumerate() {
        let mut top = base;
        for (state, &n) in OUTCOMES.iter().zip(&day.counts) {
            if n == 0 {
                continue;
            }
            let h = plot * n as f64 / max;
            top -= h;
            chart.bars.push(Bar {
                x: r(LEFT + slot * i as f64 + slot * 0.15),
                y: r(top),
                w: r(slot * 0.7),
                h: r(h),
                class: format!("s-{}", state.as_str()),
                title: format!("{}: {n} {}", day.day, state.as_str()),
            });
        }
    }
    chart.empty = most == 0;
    chart.legend = OUTCOMES
        .iter()
        .map(|s| Legend { class: format!("s-{}", s.as_str()), text: s.as_str().replace('_', " ") })
        .collect();
    chart
}

/// The p90 (wide, light) and p50 (narrow, dark) time to remediation per day.
pub(super) fn time_to_remediation(days: &[DayTtr]) -> Chart {
    let dates: Vec<Date> = days.iter().map(|d| d.day).collect();
    let quantiles: Vec<Option<(f64, f64)>> = days
        .iter()
        .map(|d| {
            let mut sorted = d.samples.clone();
            sorted.sort_by(f64::total_cmp);
            Some((quantile(&sorted, 0.5)?, quantile(&sorted, 0.9)?))
        })
        .collect();
    let slowest = quantiles.iter().flatten().map(|(_, p90)| *p90).fold(0.0, f64::max);
    // Whole minutes, hours or days make readable ticks.
    let unit = if slowest <= 3_600.0 {
        60.0
    } else if slowest <= 172_800.0 {
        3_600.0
    } else {
        86_400.0
    };
    let max = nice_ceiling(slowest / unit) * unit;
    let title = "Time to remediation per day (p50, p90)".to_owned();
    let mut chart = frame("chart-ttr", title, &dates, max, super::short_secs);
    let base = chart.base;
    let plot = base - TOP;
    let slot = (WIDTH - LEFT - RIGHT) / days.len().max(1) as f64;
    for (i, (day, q)) in days.iter().zip(&quantiles).enumerate() {
        let Some((p50, p90)) = *q else { continue };
        let about = format!(
            "{}: {} remediated, p50 {}, p90 {}{}",
            day.day,
            day.samples.len(),
            super::short_secs(p50),
            super::short_secs(p90),
            day.slowest.as_ref().map(|s| format!("; slowest: {s}")).unwrap_or_default()
        );
        for (value, class, inset) in [(p90, "ttr-p90", 0.15), (p50, "ttr-p50", 0.3)] {
            let h = (plot * value / max).max(1.0);
            chart.bars.push(Bar {
                x: r(LEFT + slot * i as f64 + slot * inset),
                y: r(base - h),
                w: r(slot * (1.0 - 2.0 * inset)),
                h: r(h),
                class: class.to_owned(),
                title: about.clone(),
            });
        }
    }
    chart.empty = chart.bars.is_empty();
    chart.legend = vec![
        Legend { class: "ttr-p50".to_owned(), text: "p50".to_owned() },
        Legend { class: "ttr-p90".to_owned(), text: "p90".to_owned() },
    ];
    chart
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on the first surprise")]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn ceilings_are_round() {
        for (v, expected) in [(0.0, 1.0), (1.0, 1.0), (3.0, 5.0), (7.0, 10.0), (11.0, 20.0), (240.0, 500.0)] {
            assert_eq!(nice_ceiling(v), expected, "{v}");
        }
    }

    #[test]
    fn outcome_bars_stack_and_scale_to_the_busiest_day() {
        let days = vec![
            DayOutcomes { day: date!(2026 - 12 - 06), counts: [2, 0, 1, 0, 0, 0] },
            DayOutcomes { day: date!(2026 - 12 - 07), counts: [0, 0, 0, 0, 0, 0] },
        ];
        let c = outcomes(&days);
        assert!(!c.empty);
        assert_eq!(c.bars.len(), 2, "one bar per non-zero outcome");
        let (done, failed) = (&c.bars[0], &c.bars[1]);
        assert_eq!(done.class, "s-completed");
        assert_eq!(failed.class, "s-failed");
        assert_eq!(done.title, "2026-12-06: 2 completed");
        // The busiest day (3) scales to 5: 2 of 5 and 1 of 5 of the plot, stacked.
        let plot = HEIGHT - BOTTOM - TOP;
        assert!((done.h - r(plot * 0.4)).abs() < 0.11, "{}", done.h);
        assert!((failed.y + failed.h - done.y).abs() < 0.11, "stacked on top");
        assert_eq!(c.ticks.last().unwrap().text, "5");
        assert_eq!(c.days.iter().map(|d| d.text.as_str()).collect::<Vec<_>>(), ["12-06", "12-07"]);
        assert!(outcomes(&[DayOutcomes { day: date!(2026 - 12 - 07), counts: [0; 6] }]).empty);
    }

    #[test]
    fn ttr_bars_show_both_quantiles_and_the_slowest() {
        let days = vec![
            DayTtr { day: date!(2026 - 12 - 06), samples: vec![], slowest: None },
            DayTtr {
                day: date!(2026 - 12 - 07),
                samples: vec![600.0, 60.0, 7_200.0],
                slowest: Some("alice".to_owned()),
            },
        ];
        let c = time_to_remediation(&days);
        assert_eq!(c.bars.len(), 2);
        assert_eq!(c.bars[0].class, "ttr-p90");
        assert_eq!(c.bars[0].title, "2026-12-07: 3 remediated, p50 10m, p90 2.0h; slowest: alice");
        assert!(c.bars[0].h > c.bars[1].h, "p90 is taller than p50");
        assert_eq!(c.ticks.last().unwrap().text, "2.0h");
        assert!(time_to_remediation(&days[..1]).empty);
    }
}
