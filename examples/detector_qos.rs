//! Quality of service of haft's failure detectors: a seeded simulation.
//!
//! A benchmark, not a test. Heartbeats are sent every η = 1000 ms over a
//! network with 1% loss and either normal or heavy-tailed (Pareto) delays; the
//! estimators are haft's own ([`FixedTimeout`], [`PhiAccrual`]) driven through
//! the [`Estimator`] trait. The figures are those of Chen, Toueg and Aguilera,
//! "On the quality of service of failure detectors" (IEEE ToC 51(5), 2002):
//!
//! - T_D, detection time: from a crash to the permanent suspicion (mean over
//!   crash trials, each after a warm-up of 1000 heartbeats, the crash uniform in
//!   the interval after the last heartbeat sent);
//! - T_MR, mistake recurrence time: mean time between two wrong suspicions of a
//!   process that never crashes;
//! - T_M, mistake duration: mean time a wrong suspicion lasts.
//!
//! The fixed timeout is tuned so that its mean T_D equals phi's on the same
//! crash trials; then the two are compared on mistakes.
//!
//! Run: `cargo run --release --example detector_qos [-- --seed N]`.

use haft::detector::{Estimator, FixedTimeout, Millis, PhiAccrual, PhiConfig};

/// SplitMix64 (Steele, Lea and Flood, OOPSLA 2014): small, seedable, and
/// good enough for jitter; no dependency needed for that.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1): never 0, so logarithms and powers are safe.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal, by Box–Muller.
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// How long a heartbeat spends in the network.
#[derive(Clone, Copy)]
enum Delay {
    /// Normal with this mean and deviation (ms), cut at 0.
    Normal { mean: f64, deviation: f64 },
    /// Pareto with scale `minimum` (ms) and shape `alpha`: mean
    /// α·minimum/(α−1), infinite variance for α ≤ 2.
    Pareto { minimum: f64, alpha: f64 },
    /// Normal delays whose regime changes every `period` heartbeats: calm
    /// (mean, deviation) then stormy (mean, deviation), and so on. This is the
    /// network phi is designed for: its window follows the regime.
    Regimes {
        calm: (f64, f64),
        storm: (f64, f64),
        period: u64,
    },
}

impl Delay {
    /// Whether heartbeat number `k` falls in a storm.
    fn stormy(self, k: u64) -> bool {
        match self {
            Delay::Regimes { period, .. } => (k / period) % 2 == 1,
            _ => false,
        }
    }

    /// The delay of heartbeat number `k`.
    fn sample(self, rng: &mut SplitMix64, k: u64) -> Millis {
        let ms = match self {
            Delay::Normal { mean, deviation } => mean + deviation * rng.normal(),
            Delay::Pareto { minimum, alpha } => minimum / rng.uniform().powf(1.0 / alpha),
            Delay::Regimes {
                calm,
                storm,
                period,
            } => {
                let (mean, deviation) = if (k / period) % 2 == 1 { storm } else { calm };
                mean + deviation * rng.normal()
            }
        };
        // Whole milliseconds, the estimators' unit; capped so a freak sample
        // cannot overflow the clock.
        ms.clamp(0.0, 1e9).round() as Millis
    }

    fn describe(self) -> String {
        match self {
            Delay::Normal { mean, deviation } => {
                format!("normal(mean {mean} ms, sd {deviation} ms)")
            }
            Delay::Pareto { minimum, alpha } => {
                format!(
                    "Pareto(min {minimum} ms, alpha {alpha}; mean {} ms)",
                    alpha * minimum / (alpha - 1.0)
                )
            }
            Delay::Regimes {
                calm,
                storm,
                period,
            } => format!(
                "regimes of {period} heartbeats: calm normal({} ms, sd {} ms), storm normal({} ms, sd {} ms)",
                calm.0, calm.1, storm.0, storm.1
            ),
        }
    }
}

const INTERVAL: Millis = 1000;
const LOSS: f64 = 0.01;
const WARM_UP: u64 = 1000;
const CRASH_TRIALS: usize = 2000;
const ACCURACY_HEARTBEATS: u64 = 2_000_000;
/// Heartbeats per regime in the changing network: several phi windows long.
const REGIME: u64 = 20_000;

/// The arrival times of heartbeats `0..count`, as the receiver takes them: in
/// time order, dropping any overtaken by a later one (as the detector's
/// sequence numbers do) and the lost ones. `phase` shifts the delay regime.
fn arrivals(rng: &mut SplitMix64, delay: Delay, count: u64, phase: u64) -> Vec<Millis> {
    let sent: Vec<Millis> = (0..count)
        .filter_map(|k| {
            let arrival = k * INTERVAL + delay.sample(rng, k + phase);
            (rng.uniform() >= LOSS).then_some(arrival)
        })
        .collect();
    // Heartbeat k arrives at sent[k]; keep only those later than every
    // arrival of a higher sequence number that came before them.
    let mut taken = Vec::with_capacity(sent.len());
    let mut latest = None;
    for &arrival in &sent {
        if latest.is_none_or(|l| arrival > l) {
            taken.push(arrival);
            latest = Some(arrival);
        }
    }
    taken
}

/// How long after `last` the estimator starts to suspect: the smallest silence
/// at which `is_suspect` holds (it only grows with silence), found by doubling
/// and bisection through the `Estimator` trait.
fn suspicion_after<E: Estimator>(estimator: &E, last: Millis) -> Millis {
    let mut high: Millis = 1;
    while !estimator.is_suspect(last + high) {
        high *= 2;
    }
    let mut low = 0;
    while low < high {
        let middle = low + (high - low) / 2;
        if estimator.is_suspect(last + middle) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    low
}

/// Mistakes of `estimator` watching a process that never crashes.
struct Accuracy {
    mistakes: u64,
    mistake_time: Millis,
    observed: Millis,
}

fn accuracy<E: Estimator>(mut estimator: E, arrivals: &[Millis]) -> Accuracy {
    let mut result = Accuracy {
        mistakes: 0,
        mistake_time: 0,
        observed: 0,
    };
    let Some((&first, rest)) = arrivals.split_first() else {
        return result;
    };
    estimator.heartbeat(first);
    let mut last = first;
    let start = arrivals.get(WARM_UP as usize).copied().unwrap_or(first);
    for &arrival in rest {
        if last >= start {
            let suspect_at = last + suspicion_after(&estimator, last);
            if arrival > suspect_at {
                result.mistakes += 1;
                result.mistake_time += arrival - suspect_at;
            }
            result.observed += arrival - last;
        }
        estimator.heartbeat(arrival);
        last = arrival;
    }
    result
}

/// One crash trial: the last arrival before the crash, the crash time, and
/// each estimator's silence threshold at that point.
struct Crash {
    last_arrival: Millis,
    crash_at: Millis,
    phi_after: Millis,
    stormy: bool,
}

fn crash_trials(rng: &mut SplitMix64, delay: Delay, phi: &PhiAccrual) -> Vec<Crash> {
    (0..CRASH_TRIALS)
        .map(|_| {
            // Heartbeats 0..=WARM_UP are sent; the crash comes before the next.
            // A random phase, so that crashes fall in every regime alike.
            let phase = rng.next_u64() % (4 * REGIME);
            let taken = arrivals(rng, delay, WARM_UP + 1, phase);
            let crash_at = WARM_UP * INTERVAL + (rng.uniform() * INTERVAL as f64) as Millis;
            let mut estimator = phi.clone();
            for &arrival in &taken {
                estimator.heartbeat(arrival);
            }
            let last_arrival = taken.last().copied().unwrap_or(0);
            Crash {
                last_arrival,
                crash_at,
                phi_after: suspicion_after(&estimator, last_arrival),
                stormy: delay.stormy(WARM_UP + phase),
            }
        })
        .collect()
}

fn detection_time(crash: &Crash, after: Millis) -> f64 {
    (crash.last_arrival + after).saturating_sub(crash.crash_at) as f64
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n.max(1) as f64
}

/// The fixed timeout whose mean T_D over `trials` is closest to `target` from
/// above (T_D grows with the timeout, so bisection).
fn matching_timeout(trials: &[Crash], target: f64) -> Millis {
    let mean_td = |timeout| mean(trials.iter().map(|c| detection_time(c, timeout)));
    let (mut low, mut high) = (1, 100 * INTERVAL);
    while low < high {
        let middle = low + (high - low) / 2;
        if mean_td(middle) >= target {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    low
}

/// Mean T_D over the calm and over the stormy trials ("–" when none).
fn split_td(trials: &[Crash], after: impl Fn(&Crash) -> Millis) -> String {
    let part = |stormy: bool| {
        let chosen: Vec<f64> = trials
            .iter()
            .filter(|c| c.stormy == stormy)
            .map(|c| detection_time(c, after(c)))
            .collect();
        if chosen.is_empty() {
            "–".to_string()
        } else {
            format!("{:.0}", mean(chosen.into_iter()))
        }
    };
    format!("{} / {} ms", part(false), part(true))
}

fn row(name: &str, td: f64, split: &str, accuracy: &Accuracy) {
    let (tmr, tm) = if accuracy.mistakes == 0 {
        ("∞ (no mistake)".to_string(), "–".to_string())
    } else {
        (
            format!(
                "{:.0} s",
                accuracy.observed as f64 / accuracy.mistakes as f64 / 1000.0
            ),
            format!(
                "{:.0} ms",
                accuracy.mistake_time as f64 / accuracy.mistakes as f64
            ),
        )
    };
    println!(
        "| {name} | {td:.1} ms | {split} | {tmr} | {tm} | {} |",
        accuracy.mistakes
    );
}

fn main() {
    let mut seed: u64 = 2004;
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--seed") {
        match args.get(at + 1).map(|s| s.parse::<u64>()) {
            Some(Ok(value)) => seed = value,
            _ => {
                eprintln!("usage: detector_qos [--seed N]  (N a whole number)");
                std::process::exit(2);
            }
        }
    }
    println!(
        "seed {seed}; heartbeat every {INTERVAL} ms, loss {LOSS}, {ACCURACY_HEARTBEATS} heartbeats for accuracy, {CRASH_TRIALS} crash trials\n"
    );
    let scenarios = [
        Delay::Normal {
            mean: 50.0,
            deviation: 20.0,
        },
        Delay::Pareto {
            minimum: 25.0,
            alpha: 2.0,
        },
        Delay::Regimes {
            calm: (50.0, 20.0),
            storm: (500.0, 400.0),
            period: REGIME,
        },
    ];
    let phis = [
        (
            "phi (Akka defaults, pause 0)",
            PhiConfig {
                acceptable_heartbeat_pause: 0,
                ..PhiConfig::default()
            },
        ),
        ("phi (Akka defaults, pause 3 s)", PhiConfig::default()),
    ];
    for (index, delay) in scenarios.into_iter().enumerate() {
        println!("### {}\n", delay.describe());
        println!("| detector | mean T_D | T_D calm / storm | T_MR | T_M | mistakes |");
        println!("|---|---|---|---|---|---|");
        let mut rng = SplitMix64(seed ^ (index as u64).wrapping_mul(0xA076_1D64_78BD_642F));
        let stream = arrivals(&mut rng, delay, ACCURACY_HEARTBEATS, 0);
        for (name, config) in phis {
            let phi = match PhiAccrual::new(config) {
                Ok(phi) => phi,
                Err(error) => {
                    eprintln!("bad phi config: {error}");
                    std::process::exit(1);
                }
            };
            let trials = crash_trials(&mut rng, delay, &phi);
            let phi_td = mean(trials.iter().map(|c| detection_time(c, c.phi_after)));
            let split = split_td(&trials, |c| c.phi_after);
            row(name, phi_td, &split, &accuracy(phi, &stream));
            let timeout = matching_timeout(&trials, phi_td);
            let fixed_td = mean(trials.iter().map(|c| detection_time(c, timeout)));
            let fixed = FixedTimeout::new(timeout).unwrap_or_else(|error| {
                eprintln!("bad timeout: {error}");
                std::process::exit(1);
            });
            let split = split_td(&trials, |_| timeout);
            row(
                &format!("fixed timeout {timeout} ms"),
                fixed_td,
                &split,
                &accuracy(fixed, &stream),
            );
        }
        println!();
    }
}
