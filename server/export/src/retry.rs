//! How the export waits between attempts: a data source's request or file, and handing a claim back to the
//! queue. One policy for all of them, exponential with jitter (`backon`), so that many exports failing
//! together do not ask again in step.

use backon::BackoffBuilder;
use std::time::Duration;

/// The first wait before a data source is asked again.
pub const SOURCE_FIRST: Duration = Duration::from_millis(500);
/// The longest wait between two attempts on a data source, before its jitter.
pub const SOURCE_MOST: Duration = Duration::from_secs(30);

/// Waits that double from `first` up to `most`, each with up to as much again at random; endless (the
/// caller counts its attempts or watches its deadline).
pub fn delays(first: Duration, most: Duration) -> impl Iterator<Item = Duration> + Send {
    backon::ExponentialBuilder::default()
        .with_min_delay(first)
        .with_max_delay(most)
        .with_jitter()
        .without_max_times()
        .build()
}

/// The waits between attempts on a data source (a request, or a whole file written again).
pub fn source_delays() -> impl Iterator<Item = Duration> + Send {
    delays(SOURCE_FIRST, SOURCE_MOST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_the_first_up_to_the_most_with_jitter() {
        let waits: Vec<Duration> = source_delays().take(12).collect();
        assert!(waits[0] >= SOURCE_FIRST && waits[0] <= SOURCE_FIRST * 2, "{waits:?}");
        assert!(waits[3] >= SOURCE_FIRST * 8, "doubling: {waits:?}");
        assert!(waits.iter().all(|w| *w <= SOURCE_MOST * 2), "capped: {waits:?}");
        assert!(waits[11] >= SOURCE_MOST, "reaches the most: {waits:?}");
        // Two exports failing at once do not wait alike.
        let other: Vec<Duration> = source_delays().take(12).collect();
        assert_ne!(waits, other);
    }
}
