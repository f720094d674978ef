//! The polled GET as users run dpo: `dpo-server serve` with every default (logging at info, to a file;
//! connection limits on; export workers running), next to the bare dropshot ceiling, in alternating rounds.
//! Each round's dpo figure is divided by the ceiling's of the same round and the median of those ratios
//! counts: this machine's neighbours move both servers by a fifth from round to round, which a ratio of two
//! medians taken apart does not cancel.

use super::load::{DpoServer, start_listening, wrk};
use dpo_server::store::sqlite::SqliteStore;
use std::{path::Path, process::Command};

/// Rounds of each side.
const ROUNDS: usize = 7;
/// Target: the polled GET at every default against the ceiling.
const TARGET: f64 = 0.80;

/// Requests/s of each round, both sides.
pub struct Polled {
    dpo: Vec<f64>,
    ceiling: Vec<f64>,
    seconds: u64,
}

impl Polled {
    /// Each round's share (dpo over the ceiling), sorted.
    fn ratios(&self) -> Vec<f64> {
        let mut ratios: Vec<f64> = self.dpo.iter().zip(&self.ceiling).map(|(d, c)| share(*d, *c)).collect();
        ratios.sort_by(f64::total_cmp);
        ratios
    }

    /// The section of BENCHMARKS.md.
    pub fn render(&self) -> String {
        let mut out = format!(
            "\n## Polled GET as users run it\n\n`dpo-server serve --bind 127.0.0.1:0 --log-file <state>/dpo-bench.log \
             --state-dir <state>`, every other setting at its default (logging at info, one line per request; \
             connection limits on; export workers running, idle), over SQLite holding 1000 operations, one of them \
             polled; next to the bare dropshot ceiling answering a constant. wrk -t2 -c32, {} s a round, {ROUNDS} \
             rounds, the two servers alternating; each round's share is dpo's requests/s over the ceiling's in \
             that round.\n\n| round | dpo (requests/s) | ceiling (requests/s) | share |\n|---:|---:|---:|---:|\n",
            self.seconds
        );
        for (round, (dpo, ceiling)) in self.dpo.iter().zip(&self.ceiling).enumerate() {
            out.push_str(&format!(
                "| {} | {dpo:.0} | {ceiling:.0} | {:.0}% |\n",
                round + 1,
                100.0 * share(*dpo, *ceiling)
            ));
        }
        let ratios = self.ratios();
        let (lowest, highest) = (ratios.first().copied().unwrap_or(0.0), ratios.last().copied().unwrap_or(0.0));
        let median = median(&ratios);
        out.push_str(&format!(
            "\nMedian share {:.0}% (target ≥ {:.0}%: {}); the rounds range from {:.0}% to {:.0}%.\n",
            100.0 * median,
            100.0 * TARGET,
            if median >= TARGET { "met" } else { "missed" },
            100.0 * lowest,
            100.0 * highest,
        ));
        out
    }
}

/// The middle of `sorted` shares.
fn median(sorted: &[f64]) -> f64 {
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// A round's share: dpo's requests/s over the ceiling's.
fn share(dpo: f64, ceiling: f64) -> f64 {
    dpo / ceiling.max(1.0)
}

/// Seeds a store in `state`, starts dpo over it with every default and the ceiling, and measures.
pub fn measure(release: &Path, state: &Path, seconds: u64) -> anyhow::Result<Polled> {
    let _ = std::fs::remove_dir_all(state);
    let probe = {
        let sqlite = SqliteStore::open(state)?;
        super::seed(&sqlite, |records| sqlite.insert_many(records), 1000)?.probe
    };
    let DpoServer { process: _dpo, url, token } = DpoServer::start(release, state, &[])?;
    let (_ceiling, ceiling_url) = start_listening(Command::new(release.join("dropshot-ceiling")))?;
    let (dpo_get, ceiling_get) =
        (format!("{url}/v1.0/dataPolicyOperations/{probe}"), format!("{ceiling_url}/dataPolicyOperations/x"));
    let mut polled = Polled { dpo: Vec::new(), ceiling: Vec::new(), seconds };
    for round in 1..=ROUNDS {
        println!("==> polled GET at every default, round {round} of {ROUNDS}");
        polled.dpo.push(wrk(&dpo_get, Some(&token), None, seconds)?.requests_per_second);
        polled.ceiling.push(wrk(&ceiling_get, None, None, seconds)?.requests_per_second);
    }
    Ok(polled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_is_the_median_of_each_round_s_ratio() {
        // The machine slows down in round 2: each round's own ratio says 90%, 80% or 85%, whatever the drift.
        let polled = Polled {
            dpo: vec![90_000.0, 40_000.0, 85_000.0],
            ceiling: vec![100_000.0, 50_000.0, 100_000.0],
            seconds: 8,
        };
        assert!((median(&polled.ratios()) - 0.85).abs() < 1e-9);
        let text = polled.render();
        assert!(text.contains("| 2 | 40000 | 50000 | 80% |"), "{text}");
        assert!(text.contains("Median share 85% (target ≥ 80%: met); the rounds range from 80% to 90%."), "{text}");
    }
}
