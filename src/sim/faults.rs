//! Faults the simulator can inject, and the plan that schedules them.
//!
//! A [`FaultPlan`] is a list of [`FaultRule`]s, each naming a venue, a [`Fault`] and when it fires.
//! It comes from the `--faults` spec, from a TOML scenario, or from code; [`crate::sim::Simulator::inject`]
//! adds one-shot faults at run time. The syntax is documented on [`crate::sim`].
//!
//! Faults are of two kinds. *Stream* faults (drop, checksum, close, stall, malformed) ride on the
//! next market step and hit every subscribed connection of the venue. *Connection* faults (reject,
//! http451, http429, delay-snapshot) wait in a queue and are taken by the next handshake or the
//! next subscription (the next REST snapshot request, for Binance).
//!
//! Scheduling is deterministic for a seed: step triggers count market steps, and probabilistic rules
//! draw from a per-venue generator seeded from the simulator's seed, once per step.

use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;

use crate::types::Venue;

/// One fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Drop the next update message: a sequence gap on Binance (`U` jumps) and Coinbase
    /// (`sequence_num` jumps), a silently missing update on Kraken and Bitfinex.
    Drop,
    /// Send a wrong checksum in the next checksummed message (Kraken `checksum`, Bitfinex `cs`).
    Checksum,
    /// Close every subscribed connection (close frame 1001, then the TCP connection).
    Close,
    /// Stop sending anything (updates, heartbeats, pings) but keep the socket open.
    Stall,
    /// Send one frame of truncated JSON; the stream then goes on intact.
    Malformed,
    /// Refuse the next subscription with the venue's own error message (Binance: the next REST
    /// snapshot answers HTTP 400 `{"code":-1121,"msg":"Invalid symbol."}`).
    Reject,
    /// Answer the next WebSocket handshake with HTTP 451 (Binance's geo-block body).
    Http451,
    /// Answer the next WebSocket handshake with HTTP 429.
    Http429,
    /// Hold back the next snapshot (WebSocket snapshot or Binance REST answer) for this long.
    DelaySnapshot(Duration),
}

impl Fault {
    /// True for faults taken by the next handshake or subscription rather than the next step.
    pub fn is_connection_fault(self) -> bool {
        matches!(
            self,
            Fault::Reject | Fault::Http451 | Fault::Http429 | Fault::DelaySnapshot(_)
        )
    }

    /// The spec name (`drop`, `delay-snapshot:2s`, ...).
    pub fn spec(self) -> String {
        match self {
            Fault::Drop => "drop".into(),
            Fault::Checksum => "checksum".into(),
            Fault::Close => "close".into(),
            Fault::Stall => "stall".into(),
            Fault::Malformed => "malformed".into(),
            Fault::Reject => "reject".into(),
            Fault::Http451 => "http451".into(),
            Fault::Http429 => "http429".into(),
            Fault::DelaySnapshot(d) => format!("delay-snapshot:{}ms", d.as_millis()),
        }
    }

    /// Parse `drop`, `checksum`, ..., `delay-snapshot:2s`.
    pub fn parse(text: &str) -> Result<Fault, String> {
        let (name, arg) = match text.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (text.trim(), None),
        };
        let fault = match name {
            "drop" => Fault::Drop,
            "checksum" => Fault::Checksum,
            "close" => Fault::Close,
            "stall" => Fault::Stall,
            "malformed" => Fault::Malformed,
            "reject" => Fault::Reject,
            "http451" | "451" => Fault::Http451,
            "http429" | "429" => Fault::Http429,
            "delay-snapshot" | "delay" => {
                let d = match arg {
                    Some(a) => parse_duration(a)?,
                    None => Duration::from_secs(2),
                };
                return Ok(Fault::DelaySnapshot(d));
            }
            other => {
                return Err(format!(
                    "unknown fault {other:?} (accepted: drop, checksum, close, stall, malformed, \
                     reject, http451, http429, delay-snapshot[:DURATION])"
                ));
            }
        };
        if arg.is_some() {
            return Err(format!("fault {name:?} takes no argument"));
        }
        Ok(fault)
    }
}

/// When a rule fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// At the first market step.
    Start,
    /// At this market step number (deterministic for a seed).
    Step(u64),
    /// This long after the simulator started (checked at each step).
    After(Duration),
}

/// How a rule repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    /// Every this many steps.
    Steps(u64),
    /// Every this long.
    Time(Duration),
}

/// A scheduled fault.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    /// Venue it hits.
    pub venue: Venue,
    /// The fault.
    pub fault: Fault,
    /// First firing.
    pub when: When,
    /// Repetition after the first firing, if any.
    pub every: Option<Every>,
    /// Instead of a schedule: fire at each step with this probability (seeded).
    pub probability: Option<f64>,
}

/// All scheduled faults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultPlan {
    /// The rules, in spec order.
    pub rules: Vec<FaultRule>,
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> FaultPlan {
        FaultPlan::default()
    }

    /// Parse a `--faults` spec: `VENUE=FAULT[@WHEN][/EVERY]` or `VENUE=FAULT~PROBABILITY`, items
    /// separated by commas (see the module doc of [`crate::sim`]).
    pub fn parse(spec: &str) -> Result<FaultPlan, String> {
        let mut rules = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            rules.push(parse_rule(item)?);
        }
        Ok(FaultPlan { rules })
    }

    /// Parse a TOML scenario (see the module doc of [`crate::sim`]).
    pub fn from_toml(text: &str) -> Result<Scenario, String> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut plan = match &raw.faults {
            Some(spec) => FaultPlan::parse(spec)?,
            None => FaultPlan::none(),
        };
        for f in raw.fault {
            let venue: Venue = f.venue.parse()?;
            let fault = Fault::parse(&f.kind)?;
            let when = match &f.at {
                Some(a) => parse_when(a)?,
                None => When::Start,
            };
            let every = match &f.every {
                Some(e) => Some(parse_every(e)?),
                None => None,
            };
            if let Some(p) = f.probability {
                check_probability(p)?;
            }
            plan.rules.push(FaultRule {
                venue,
                fault,
                when,
                every,
                probability: f.probability,
            });
        }
        Ok(Scenario {
            seed: raw.seed,
            rate: raw.rate,
            plan,
        })
    }

    /// The rules of one venue.
    pub fn for_venue(&self, venue: Venue) -> Vec<FaultRule> {
        self.rules
            .iter()
            .filter(|r| r.venue == venue)
            .cloned()
            .collect()
    }
}

/// A TOML scenario: optional seed and rate, and the fault plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// `seed = N`.
    pub seed: Option<u64>,
    /// `rate = "realistic" | "max" | "N"`.
    pub rate: Option<String>,
    /// `faults = "SPEC"` plus every `[[fault]]` table.
    pub plan: FaultPlan,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    seed: Option<u64>,
    rate: Option<String>,
    faults: Option<String>,
    #[serde(default)]
    fault: Vec<RawFault>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    venue: String,
    kind: String,
    at: Option<String>,
    every: Option<String>,
    probability: Option<f64>,
}

fn parse_rule(item: &str) -> Result<FaultRule, String> {
    let (venue, rest) = item
        .split_once('=')
        .ok_or_else(|| format!("fault item {item:?} is not VENUE=FAULT"))?;
    let venue: Venue = venue.parse()?;
    if let Some((fault, p)) = rest.split_once('~') {
        let p: f64 = p
            .trim()
            .parse()
            .map_err(|_| format!("bad probability in {item:?}"))?;
        check_probability(p)?;
        return Ok(FaultRule {
            venue,
            fault: Fault::parse(fault)?,
            when: When::Start,
            every: None,
            probability: Some(p),
        });
    }
    let (head, every) = match rest.split_once('/') {
        Some((h, e)) => (h, Some(parse_every(e)?)),
        None => (rest, None),
    };
    let (fault, when) = match head.split_once('@') {
        Some((f, w)) => (f, parse_when(w)?),
        None => (head, When::Start),
    };
    Ok(FaultRule {
        venue,
        fault: Fault::parse(fault)?,
        when,
        every,
        probability: None,
    })
}

fn check_probability(p: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!("probability {p} is not between 0 and 1"))
    }
}

fn parse_when(text: &str) -> Result<When, String> {
    let t = text.trim();
    if let Ok(n) = t.trim_start_matches('#').parse::<u64>() {
        return Ok(When::Step(n));
    }
    Ok(When::After(parse_duration(t)?))
}

fn parse_every(text: &str) -> Result<Every, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<u64>() {
        if n == 0 {
            return Err("repetition of 0 steps".into());
        }
        return Ok(Every::Steps(n));
    }
    let d = parse_duration(t)?;
    if d.is_zero() {
        return Err("repetition of 0 s".into());
    }
    Ok(Every::Time(d))
}

/// Parse `250ms`, `5s`, `1.5s`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || format!("bad duration {t:?} (examples: 250ms, 5s, 1.5s, 2m)");
    let (num, unit_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1u64)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000)
    } else {
        return Err(bad());
    };
    // Durations are whole milliseconds; parse the decimal text exactly.
    let value = crate::decimal::Dec::parse(num.trim()).map_err(|_| bad())?;
    if value.is_negative() {
        return Err(bad());
    }
    let ms = value.raw() * unit_ms as i128 / 1_000_000_000_000_000_000;
    u64::try_from(ms)
        .map(Duration::from_millis)
        .map_err(|_| bad())
}

/// Decides, step by step, which rules of one venue fire.
pub(crate) struct Scheduler {
    rules: Vec<(FaultRule, Option<Next>)>,
    rng: StdRng,
}

#[derive(Clone, Copy)]
enum Next {
    Step(u64),
    Time(Duration),
}

impl Scheduler {
    pub(crate) fn new(rules: Vec<FaultRule>, rng: StdRng) -> Scheduler {
        let rules = rules
            .into_iter()
            .map(|r| {
                let next = match r.when {
                    When::Start => Next::Step(0),
                    When::Step(n) => Next::Step(n),
                    When::After(d) => Next::Time(d),
                };
                (r, Some(next))
            })
            .collect();
        Scheduler { rules, rng }
    }

    /// The faults due at market step `step`, `elapsed` after the start.
    pub(crate) fn due(&mut self, step: u64, elapsed: Duration) -> Vec<Fault> {
        let mut out = Vec::new();
        for (rule, next) in &mut self.rules {
            if let Some(p) = rule.probability {
                // One draw per rule per step, whatever the outcome, keeps runs reproducible.
                if self.rng.gen_bool(p) {
                    out.push(rule.fault);
                }
                continue;
            }
            let fire = match *next {
                Some(Next::Step(n)) => step >= n,
                Some(Next::Time(t)) => elapsed >= t,
                None => false,
            };
            if !fire {
                continue;
            }
            out.push(rule.fault);
            *next = match (rule.every, *next) {
                (Some(Every::Steps(k)), _) => Some(Next::Step(step + k)),
                (Some(Every::Time(d)), Some(Next::Time(t))) => Some(Next::Time(t + d)),
                (Some(Every::Time(d)), _) => Some(Next::Time(elapsed + d)),
                (None, _) => None,
            };
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn spec_items_parse() {
        let plan = FaultPlan::parse(
            "binance=drop, kraken=checksum@5s/10s,coinbase=close@50,bitfinex=drop~0.25,\
             kraken=delay-snapshot:1500ms",
        )
        .expect("valid spec");
        assert_eq!(plan.rules.len(), 5);
        assert_eq!(plan.rules[0].fault, Fault::Drop);
        assert_eq!(plan.rules[0].when, When::Start);
        assert_eq!(plan.rules[1].when, When::After(Duration::from_secs(5)));
        assert_eq!(
            plan.rules[1].every,
            Some(Every::Time(Duration::from_secs(10)))
        );
        assert_eq!(plan.rules[2].when, When::Step(50));
        assert_eq!(plan.rules[3].probability, Some(0.25));
        assert_eq!(
            plan.rules[4].fault,
            Fault::DelaySnapshot(Duration::from_millis(1500))
        );
        assert!(FaultPlan::parse("binance=explode").is_err());
        assert!(FaultPlan::parse("bybit=drop").is_err());
        assert!(FaultPlan::parse("binance=drop~2").is_err());
        assert!(FaultPlan::parse("binance").is_err());
    }

    #[test]
    fn toml_scenario_parses() {
        let s = FaultPlan::from_toml(
            r#"
            seed = 7
            rate = "max"
            faults = "binance=drop@3"
            [[fault]]
            venue = "kraken"
            kind = "checksum"
            at = "20"
            every = "5"
            "#,
        )
        .expect("valid scenario");
        assert_eq!(s.seed, Some(7));
        assert_eq!(s.rate.as_deref(), Some("max"));
        assert_eq!(s.plan.rules.len(), 2);
        assert_eq!(s.plan.rules[1].every, Some(Every::Steps(5)));
        assert!(FaultPlan::from_toml("[[fault]]\nvenue='kraken'\nkind='x'").is_err());
    }

    #[test]
    fn scheduler_fires_on_steps_and_repeats() {
        let plan = FaultPlan::parse("kraken=drop@2/3,kraken=close@1s").expect("spec");
        let mut s = Scheduler::new(plan.rules, StdRng::seed_from_u64(1));
        let fired: Vec<Vec<Fault>> = (0..9)
            .map(|i| s.due(i, Duration::from_millis(i * 200)))
            .collect();
        let drops: Vec<u64> = (0..9)
            .filter(|&i| fired[i as usize].contains(&Fault::Drop))
            .collect();
        assert_eq!(drops, [2, 5, 8]);
        let closes: Vec<u64> = (0..9)
            .filter(|&i| fired[i as usize].contains(&Fault::Close))
            .collect();
        assert_eq!(closes, [5]);
    }
}
