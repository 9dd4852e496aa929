//! When to suspect a peer, given the heartbeats that arrived from it.
//!
//! Two estimators sit behind one trait, [`Estimator`]: a [`FixedTimeout`], and
//! the [`PhiAccrual`] detector of Hayashibara, Défago, Yared and Katayama, "The φ
//! Accrual Failure Detector" (SRDS 2004), with the defaults and the normal-CDF
//! approximation that Akka uses. Both are sans-IO: every time is an argument, in
//! milliseconds since an epoch the caller picks.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use super::Millis;

/// Decides, from a peer's heartbeat arrivals, whether to suspect it.
///
/// The detector calls [`Estimator::heartbeat`] for every fresh heartbeat, in
/// arrival order, and [`Estimator::is_suspect`] on each check. `now` never goes
/// backwards between calls.
pub trait Estimator: Clone + std::fmt::Debug {
    /// Records a heartbeat that arrived at `now`: a sample of the inter-arrival time.
    fn heartbeat(&mut self, now: Millis);

    /// Restarts the silence clock at `now` without taking a sample: the peer proved
    /// it is alive (a refutation), but not on its heartbeat schedule, so the
    /// interval would mislead an estimator that learns the schedule.
    fn restart(&mut self, now: Millis);

    /// How suspicious the silence at `now` is, on the estimator's own scale
    /// (φ for phi accrual; elapsed time over the timeout for a fixed timeout).
    fn suspicion_level(&self, now: Millis) -> f64;

    /// Whether the peer should be suspected at `now`.
    fn is_suspect(&self, now: Millis) -> bool;
}

/// Why an estimator or detector configuration was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A duration that must be positive is zero.
    #[error("`{field}` is 0 ms; give it a positive number of milliseconds")]
    ZeroDuration {
        /// The field.
        field: &'static str,
    },
    /// The phi threshold is not a positive, finite number.
    #[error(
        "phi threshold {0} is not a positive finite number; use e.g. 8.0 (Akka's default; \
         higher means fewer mistakes and slower detection)"
    )]
    BadThreshold(f64),
    /// The history window holds no sample.
    #[error("`max_sample_size` is 0; phi needs at least one inter-arrival sample (Akka uses 1000)")]
    EmptyHistory,
}

fn positive(field: &'static str, value: Millis) -> Result<Millis, ConfigError> {
    if value == 0 {
        Err(ConfigError::ZeroDuration { field })
    } else {
        Ok(value)
    }
}

/// Suspects a peer once it has been silent for a fixed time.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FixedTimeout {
    timeout: Millis,
    last_arrival: Option<Millis>,
}

impl FixedTimeout {
    /// A detector that suspects after `timeout` ms of silence (`timeout` > 0).
    pub fn new(timeout: Millis) -> Result<FixedTimeout, ConfigError> {
        Ok(FixedTimeout {
            timeout: positive("timeout", timeout)?,
            last_arrival: None,
        })
    }

    /// The configured timeout.
    pub fn timeout(&self) -> Millis {
        self.timeout
    }

    fn silence(&self, now: Millis) -> Millis {
        // Never heard from: no evidence either way, so no suspicion yet.
        self.last_arrival.map_or(0, |last| now.saturating_sub(last))
    }
}

impl Estimator for FixedTimeout {
    fn heartbeat(&mut self, now: Millis) {
        self.last_arrival = Some(now);
    }

    fn restart(&mut self, now: Millis) {
        self.last_arrival = Some(now);
    }

    fn suspicion_level(&self, now: Millis) -> f64 {
        self.silence(now) as f64 / self.timeout as f64
    }

    fn is_suspect(&self, now: Millis) -> bool {
        // Silence of exactly `timeout` already suspects: with heartbeats every H
        // and delays at most D, the largest gap is H + D, so D < T − H is the
        // exact condition under which no live peer is ever suspected.
        self.silence(now) >= self.timeout
    }
}

/// Settings of the phi accrual detector. [`PhiConfig::default`] is Akka's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhiConfig {
    /// Suspect when φ reaches this. Akka: 8.0 (a mistake about once in 10⁸).
    pub threshold: f64,
    /// Inter-arrival samples kept (a sliding window). Akka: 1000.
    pub max_sample_size: usize,
    /// Floor of the standard deviation, so that a very regular history does not
    /// make a few milliseconds of jitter look like a failure. Akka: 100 ms.
    pub min_std_deviation: Millis,
    /// Pause tolerated beyond the mean interval before φ starts to climb (added to
    /// the mean). Akka's cluster default: 3000 ms.
    pub acceptable_heartbeat_pause: Millis,
    /// The interval assumed before any sample exists; seeds the history with
    /// this mean and a quarter of it as deviation, as Akka does. Akka: 1000 ms.
    pub first_heartbeat_estimate: Millis,
}

impl Default for PhiConfig {
    fn default() -> Self {
        PhiConfig {
            threshold: 8.0,
            max_sample_size: 1000,
            min_std_deviation: 100,
            acceptable_heartbeat_pause: 3000,
            first_heartbeat_estimate: 1000,
        }
    }
}

impl PhiConfig {
    /// Checks every field; the error says which one is wrong and what to use.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(ConfigError::BadThreshold(self.threshold));
        }
        if self.max_sample_size == 0 {
            return Err(ConfigError::EmptyHistory);
        }
        positive("min_std_deviation", self.min_std_deviation)?;
        positive("first_heartbeat_estimate", self.first_heartbeat_estimate)?;
        Ok(())
    }
}

/// The φ accrual failure detector (Hayashibara et al., SRDS 2004).
///
/// φ(now) = −log₁₀ P(the next heartbeat arrives later than now), with the
/// inter-arrival times modelled as normal with the window's mean (plus the
/// acceptable pause) and standard deviation (at least the configured floor).
/// Sums are kept as integers so that the state is exact and hashable.
#[derive(Clone, Debug)]
pub struct PhiAccrual {
    config: PhiConfig,
    intervals: VecDeque<Millis>,
    interval_sum: u128,
    squared_interval_sum: u128,
    last_arrival: Option<Millis>,
}

impl PartialEq for PhiAccrual {
    fn eq(&self, other: &Self) -> bool {
        // The sums are functions of the intervals, so they need no comparison.
        self.config.threshold.to_bits() == other.config.threshold.to_bits()
            && self.config.max_sample_size == other.config.max_sample_size
            && self.config.min_std_deviation == other.config.min_std_deviation
            && self.config.acceptable_heartbeat_pause == other.config.acceptable_heartbeat_pause
            && self.config.first_heartbeat_estimate == other.config.first_heartbeat_estimate
            && self.intervals == other.intervals
            && self.last_arrival == other.last_arrival
    }
}

impl Eq for PhiAccrual {}

impl Hash for PhiAccrual {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.config.threshold.to_bits().hash(state);
        self.config.max_sample_size.hash(state);
        self.config.min_std_deviation.hash(state);
        self.config.acceptable_heartbeat_pause.hash(state);
        self.config.first_heartbeat_estimate.hash(state);
        self.intervals.hash(state);
        self.last_arrival.hash(state);
    }
}

/// The logistic approximation of the standard normal CDF that Akka's
/// `PhiAccrualFailureDetector` uses: Φ(y) ≈ 1 / (1 + exp(−y(1.5976 + 0.070566 y²))),
/// from Bowling, Khasawneh, Kaewkuekool and Cho, "A logistic approximation to
/// the cumulative normal distribution" (JIEM 2(1), 2009); its absolute error is
/// below 1.4·10⁻⁴.
pub const LOGISTIC_A: f64 = 1.5976;
/// The cubic coefficient of the approximation; see [`LOGISTIC_A`].
pub const LOGISTIC_B: f64 = 0.070566;

impl PhiAccrual {
    /// A detector with `config`, refused if the config is invalid.
    pub fn new(config: PhiConfig) -> Result<PhiAccrual, ConfigError> {
        config.validate()?;
        let mut detector = PhiAccrual {
            config,
            intervals: VecDeque::new(),
            interval_sum: 0,
            squared_interval_sum: 0,
            last_arrival: None,
        };
        // Akka's bootstrap: two samples at mean ± mean/4, so that φ is defined
        // (and not hair-triggered) from the very first heartbeat.
        let mean = config.first_heartbeat_estimate;
        let deviation = mean / 4;
        detector.sample(mean - deviation);
        detector.sample(mean + deviation);
        Ok(detector)
    }

    /// The configuration.
    pub fn config(&self) -> &PhiConfig {
        &self.config
    }

    fn sample(&mut self, interval: Millis) {
        if self.intervals.len() == self.config.max_sample_size {
            if let Some(oldest) = self.intervals.pop_front() {
                self.interval_sum -= u128::from(oldest);
                self.squared_interval_sum -= u128::from(oldest) * u128::from(oldest);
            }
        }
        self.intervals.push_back(interval);
        self.interval_sum += u128::from(interval);
        self.squared_interval_sum += u128::from(interval) * u128::from(interval);
    }

    /// The mean of the inter-arrival window, in ms.
    pub fn mean(&self) -> f64 {
        self.interval_sum as f64 / self.intervals.len().max(1) as f64
    }

    /// The population standard deviation of the window, in ms (before the floor).
    pub fn std_deviation(&self) -> f64 {
        let n = self.intervals.len().max(1) as f64;
        let mean = self.mean();
        (self.squared_interval_sum as f64 / n - mean * mean)
            .max(0.0)
            .sqrt()
    }

    /// φ after `elapsed` ms of silence.
    pub fn phi_after(&self, elapsed: Millis) -> f64 {
        let mean = self.mean() + self.config.acceptable_heartbeat_pause as f64;
        let deviation = self
            .std_deviation()
            .max(self.config.min_std_deviation as f64);
        phi(elapsed as f64, mean, deviation)
    }
}

/// φ for a silence of `elapsed` given the mean and standard deviation of the
/// inter-arrival time, using the logistic approximation ([`LOGISTIC_A`]).
///
/// The two branches compute the same quantity, −log₁₀(1 − Φ(y)); each avoids
/// the cancellation the other would suffer on its side of the mean.
pub fn phi(elapsed: f64, mean: f64, deviation: f64) -> f64 {
    let y = (elapsed - mean) / deviation;
    let e = (-y * (LOGISTIC_A + LOGISTIC_B * y * y)).exp();
    if elapsed > mean {
        -(e / (1.0 + e)).log10()
    } else {
        -(1.0 - 1.0 / (1.0 + e)).log10()
    }
}

/// The silence after which φ reaches `threshold`, in closed form: solving
/// e/(1+e) = 10^−threshold for y gives the depressed cubic
/// `LOGISTIC_B·y³ + LOGISTIC_A·y − ln((1−p)/p) = 0` with p = 10^−threshold,
/// whose one real root is Cardano's; the silence is then mean + y·deviation.
pub fn phi_crossing(threshold: f64, mean: f64, deviation: f64) -> f64 {
    let p = 10f64.powf(-threshold);
    let target = ((1.0 - p) / p).ln();
    // y³ + P·y + Q = 0 with P, Q below; P > 0, so the discriminant is positive.
    let cubic_p = LOGISTIC_A / LOGISTIC_B;
    let cubic_q = -target / LOGISTIC_B;
    let root = ((cubic_q / 2.0).powi(2) + (cubic_p / 3.0).powi(3)).sqrt();
    let y = (-cubic_q / 2.0 + root).cbrt() + (-cubic_q / 2.0 - root).cbrt();
    mean + y * deviation
}

impl Estimator for PhiAccrual {
    fn heartbeat(&mut self, now: Millis) {
        if let Some(last) = self.last_arrival {
            self.sample(now.saturating_sub(last));
        }
        self.last_arrival = Some(now);
    }

    fn restart(&mut self, now: Millis) {
        self.last_arrival = Some(now);
    }

    fn suspicion_level(&self, now: Millis) -> f64 {
        match self.last_arrival {
            Some(last) => self.phi_after(now.saturating_sub(last)),
            None => 0.0,
        }
    }

    fn is_suspect(&self, now: Millis) -> bool {
        self.suspicion_level(now) >= self.config.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_timeout_suspects_at_exactly_the_timeout() {
        let mut fixed = FixedTimeout::new(4).unwrap();
        assert!(!fixed.is_suspect(100), "never heard: no evidence yet");
        fixed.heartbeat(10);
        assert!(!fixed.is_suspect(13));
        assert!(fixed.is_suspect(14));
        assert_eq!(fixed.suspicion_level(12), 0.5);
        fixed.restart(14);
        assert!(!fixed.is_suspect(17));
    }

    #[test]
    fn bad_configs_say_what_to_fix() {
        assert_eq!(
            FixedTimeout::new(0).unwrap_err(),
            ConfigError::ZeroDuration { field: "timeout" }
        );
        let nan = PhiConfig {
            threshold: f64::NAN,
            ..PhiConfig::default()
        };
        assert!(
            PhiAccrual::new(nan)
                .unwrap_err()
                .to_string()
                .contains("use e.g. 8.0")
        );
        let empty = PhiConfig {
            max_sample_size: 0,
            ..PhiConfig::default()
        };
        assert_eq!(
            PhiAccrual::new(empty).unwrap_err(),
            ConfigError::EmptyHistory
        );
        let flat = PhiConfig {
            min_std_deviation: 0,
            ..PhiConfig::default()
        };
        assert_eq!(
            PhiAccrual::new(flat).unwrap_err().to_string(),
            "`min_std_deviation` is 0 ms; give it a positive number of milliseconds"
        );
    }

    #[test]
    fn akka_defaults() {
        let config = PhiConfig::default();
        assert_eq!(config.threshold, 8.0);
        assert_eq!(config.max_sample_size, 1000);
        assert_eq!(config.min_std_deviation, 100);
        let phi = PhiAccrual::new(config).unwrap();
        // The bootstrap samples: 750 and 1250, mean 1000, deviation 250.
        assert_eq!(phi.mean(), 1000.0);
        assert_eq!(phi.std_deviation(), 250.0);
    }

    #[test]
    fn phi_is_half_at_the_mean_and_rises_with_silence() {
        // At the mean, P(later) = 1/2, so φ = log₁₀ 2.
        assert!((phi(1000.0, 1000.0, 100.0) - 2f64.log10()).abs() < 1e-12);
        let mut last = 0.0;
        for elapsed in (0..3000).step_by(50) {
            let now = phi(f64::from(elapsed), 1000.0, 100.0);
            assert!(now >= last, "φ fell at {elapsed}");
            last = now;
        }
    }

    /// A history whose mean and population deviation are exactly `mean` and
    /// `deviation`: alternate mean − deviation and mean + deviation.
    fn phi_with_history(mean: Millis, deviation: Millis, pause: Millis) -> PhiAccrual {
        let config = PhiConfig {
            max_sample_size: 200,
            min_std_deviation: 1,
            acceptable_heartbeat_pause: pause,
            first_heartbeat_estimate: mean,
            ..PhiConfig::default()
        };
        let mut detector = PhiAccrual::new(config).unwrap();
        let mut now = 0;
        detector.heartbeat(now);
        for i in 0..400 {
            now += if i % 2 == 0 {
                mean - deviation
            } else {
                mean + deviation
            };
            detector.heartbeat(now);
        }
        assert_eq!(detector.mean(), mean as f64);
        assert_eq!(detector.std_deviation(), deviation as f64);
        detector
    }

    #[test]
    fn phi_crosses_eight_where_the_closed_form_says() {
        for (mean, deviation, pause) in [(1000, 100, 0), (1000, 250, 3000), (200, 40, 100)] {
            let detector = phi_with_history(mean, deviation, pause);
            // The first whole millisecond of silence at which the detector suspects.
            let measured = (0..100_000)
                .find(|elapsed| detector.phi_after(*elapsed) >= 8.0)
                .expect("φ reaches 8 within 100 s") as f64;
            let formula = phi_crossing(8.0, (mean + pause) as f64, deviation as f64);
            let error = (measured - formula).abs() / formula;
            assert!(
                error < 0.01,
                "mean {mean} sd {deviation}: measured {measured}, formula {formula}"
            );
            // Rounding up to a whole millisecond is the only difference.
            assert!(measured >= formula && measured - formula < 1.0);
        }
        // y at φ = 8 is 5.226: the approximation's own quantile, a little below
        // the exact normal quantile Φ⁻¹(1 − 10⁻⁸) ≈ 5.612.
        let y = phi_crossing(8.0, 0.0, 1.0);
        assert!((y - 5.2260).abs() < 1e-4, "{y}");
    }

    #[test]
    fn window_forgets_the_oldest_sample() {
        let config = PhiConfig {
            max_sample_size: 3,
            acceptable_heartbeat_pause: 0,
            first_heartbeat_estimate: 400,
            ..PhiConfig::default()
        };
        let mut detector = PhiAccrual::new(config).unwrap();
        for now in [0, 100, 200, 300] {
            detector.heartbeat(now);
        }
        // Bootstrap 300, 500 then three samples of 100: only the last three stay.
        assert_eq!(detector.mean(), 100.0);
        assert_eq!(detector.std_deviation(), 0.0);
        // The floor applies: at 100 ms elapsed (the mean) φ is log₁₀ 2.
        assert!((detector.suspicion_level(400) - 2f64.log10()).abs() < 1e-12);
    }
}
