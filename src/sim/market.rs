//! The synthetic market: one seeded random-walk mid near 90,000 USD, and per venue a book that
//! follows it with that venue's tick size, depth and update rate (protocols.md §6).
//!
//! Every venue runs its own copy of the mid walk from the same seed, so all four see the same mid
//! at the same step number, plus a small fixed premium (Binance quotes USDT) and per-step noise of
//! their own. A step returns the level changes it made, in the order it made them; applying them
//! in order to the previous book gives the new book exactly. The book is always uncrossed and
//! never deeper than the venue's maximum depth, so a client that follows the stream holds exactly
//! the same book as the simulator.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::book::Book;
use crate::decimal::Dec;
use crate::types::{Side, Venue};

const UNIT: i128 = 1_000_000_000_000_000_000;

/// One level change: the absolute quantity at a price (zero deletes the level).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    /// Book side.
    pub side: Side,
    /// Exact price.
    pub price: Dec,
    /// Absolute quantity; zero removes the level.
    pub qty: Dec,
}

/// How a venue's book looks.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// Price tick as a raw [`Dec`] (units of 1e-18).
    pub tick: i128,
    /// Quantity step as a raw [`Dec`].
    pub qty_step: i128,
    /// Smallest quantity in steps.
    pub min_qty_steps: u64,
    /// Largest power of ten of a quantity in steps (quantities reach 9 × 10^this steps).
    pub max_qty_pow: u32,
    /// Most levels per side.
    pub max_levels: usize,
    /// Fewest levels per side (the generator refills below this).
    pub min_levels: usize,
    /// Largest gap between adjacent levels, in ticks.
    pub max_gap: i64,
    /// Spread at the top, in ticks.
    pub spread: i64,
    /// Premium over the common mid, in cents.
    pub premium_cents: i64,
    /// Level changes per step (inclusive range).
    pub changes: (u32, u32),
}

impl Profile {
    /// The profile of a venue.
    pub fn of(venue: Venue) -> Profile {
        match venue {
            // BTCUSDT: tick 0.01, step 0.00001, REST snapshot depth 5000 (§1.6).
            Venue::Binance => Profile {
                tick: UNIT / 100,
                qty_step: UNIT / 100_000,
                min_qty_steps: 1,
                max_qty_pow: 5,
                max_levels: 5000,
                min_levels: 4950,
                max_gap: 9,
                spread: 1,
                premium_cents: 350,
                changes: (8, 30),
            },
            // BTC-USD: tick 0.01, step 1e-8, whole book in the snapshot (§2.6).
            Venue::Coinbase => Profile {
                tick: UNIT / 100,
                qty_step: UNIT / 100_000_000,
                min_qty_steps: 1,
                max_qty_pow: 8,
                max_levels: 15_000,
                min_levels: 14_900,
                max_gap: 19,
                spread: 1,
                premium_cents: 0,
                changes: (5, 25),
            },
            // BTC/USD: tick 0.1, 8 decimals, ordermin 0.0001, depth 1000 (§3.6).
            Venue::Kraken => Profile {
                tick: UNIT / 10,
                qty_step: UNIT / 100_000_000,
                min_qty_steps: 10_000,
                max_qty_pow: 8,
                max_levels: 1000,
                min_levels: 990,
                max_gap: 9,
                spread: 1,
                premium_cents: -120,
                changes: (2, 10),
            },
            // tBTCUSD P0: five significant digits, so $1 below $100k; len 250 (§4.6).
            Venue::Bitfinex => Profile {
                tick: UNIT,
                qty_step: UNIT / 100_000_000,
                min_qty_steps: 1,
                max_qty_pow: 8,
                max_levels: 250,
                min_levels: 245,
                max_gap: 3,
                spread: 1,
                premium_cents: 200,
                changes: (1, 6),
            },
        }
    }
}

/// The common mid: a mean-reverting random walk in cents, kept between 82,000 and 98,000 USD so
/// Bitfinex prices keep their $1 tick (five significant digits, protocols.md §4.6).
#[derive(Clone, Debug)]
pub struct MidWalk {
    rng: StdRng,
    cents: i64,
}

const MID_START: i64 = 9_000_000;

impl MidWalk {
    /// A walk starting at 90,000 USD.
    pub fn new(seed: u64) -> MidWalk {
        MidWalk {
            rng: StdRng::seed_from_u64(seed ^ 0x6d69_645f_7761_6c6b),
            cents: MID_START,
        }
    }

    /// The current mid in cents.
    pub fn cents(&self) -> i64 {
        self.cents
    }

    /// Advance one step and return the new mid in cents.
    pub fn step(&mut self) -> i64 {
        let shock = self.rng.gen_range(-150..=150);
        let pull = (MID_START - self.cents) / 300;
        self.cents = (self.cents + shock + pull).clamp(8_200_000, 9_800_000);
        self.cents
    }
}

/// One venue's synthetic book and its generator.
#[derive(Clone, Debug)]
pub struct VenueMarket {
    profile: Profile,
    mid: MidWalk,
    rng: StdRng,
    book: Book,
    steps: u64,
}

impl VenueMarket {
    /// A venue's market at step 0, with a full book around the starting mid.
    pub fn new(venue: Venue, seed: u64) -> VenueMarket {
        let profile = Profile::of(venue);
        let venue_seed = seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(venue.index() as u64 + 1);
        let mut m = VenueMarket {
            profile,
            mid: MidWalk::new(seed),
            rng: StdRng::seed_from_u64(venue_seed),
            book: Book::new(),
            steps: 0,
        };
        let (bid_top, ask_top) = m.tops(m.mid.cents());
        let target = (profile.min_levels + profile.max_levels) / 2;
        let mut p = bid_top;
        for _ in 0..target {
            let q = m.qty();
            m.book.set(Side::Bid, m.price(p), q);
            p -= m.rng.gen_range(1..=profile.max_gap);
        }
        let mut p = ask_top;
        for _ in 0..target {
            let q = m.qty();
            m.book.set(Side::Ask, m.price(p), q);
            p += m.rng.gen_range(1..=profile.max_gap);
        }
        m
    }

    /// The venue's profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The current book.
    pub fn book(&self) -> &Book {
        &self.book
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Advance one step: move the mid, keep the top around it, churn levels, keep the depth.
    /// Returns the changes made, in order (never empty).
    pub fn step(&mut self) -> Vec<Change> {
        self.steps += 1;
        let p = self.profile;
        let mut out = Vec::new();
        let mid = self.mid.step() + self.rng.gen_range(-60..=60);
        let (bid_top, ask_top) = self.tops(mid);

        // Levels on the wrong side of the new top go first, so the book never crosses.
        while let Some(a) = self.book.best_ask() {
            if self.ticks(a.price) > bid_top {
                break;
            }
            self.apply(&mut out, Side::Ask, a.price, Dec::ZERO);
        }
        while let Some(b) = self.book.best_bid() {
            if self.ticks(b.price) < ask_top {
                break;
            }
            self.apply(&mut out, Side::Bid, b.price, Dec::ZERO);
        }
        if self
            .book
            .best_bid()
            .is_none_or(|b| self.ticks(b.price) < bid_top)
        {
            let q = self.qty();
            self.apply(&mut out, Side::Bid, self.price(bid_top), q);
        }
        if self
            .book
            .best_ask()
            .is_none_or(|a| self.ticks(a.price) > ask_top)
        {
            let q = self.qty();
            self.apply(&mut out, Side::Ask, self.price(ask_top), q);
        }

        let n = self.rng.gen_range(p.changes.0..=p.changes.1);
        for _ in 0..n {
            let side = if self.rng.gen_bool(0.5) {
                Side::Bid
            } else {
                Side::Ask
            };
            let len = self.book.len(side);
            let at = if self.rng.gen_bool(0.75) {
                let idx = self.rng.gen_range(0..len.clamp(1, 40));
                self.book.levels(side).nth(idx)
            } else {
                // Anywhere in the book: a random price between its ends, then the level at or
                // above it (a range lookup, not a walk over thousands of levels).
                self.level_near_random_price(side)
            };
            let roll = self.rng.gen_range(0..100);
            if roll < 60 {
                if let Some(level) = at {
                    let q = self.qty();
                    self.apply(&mut out, side, level.price, q);
                }
            } else if roll < 78 {
                if len > p.min_levels {
                    if let Some(level) = at {
                        self.apply(&mut out, side, level.price, Dec::ZERO);
                    }
                }
            } else {
                let best = match side {
                    Side::Bid => self.book.best_bid(),
                    Side::Ask => self.book.best_ask(),
                };
                let Some(best) = best else { continue };
                let off = self.rng.gen_range(1..60);
                let t = match side {
                    Side::Bid => self.ticks(best.price) - off,
                    Side::Ask => self.ticks(best.price) + off,
                };
                let price = self.price(t);
                if t > 0 && self.book.get(side, price).is_none() {
                    let q = self.qty();
                    self.apply(&mut out, side, price, q);
                }
            }
        }

        for side in [Side::Bid, Side::Ask] {
            while self.book.len(side) > p.max_levels {
                let worst = match side {
                    Side::Bid => self.book.coverage().low,
                    Side::Ask => self.book.coverage().high,
                };
                let Some(price) = worst else { break };
                self.apply(&mut out, side, price, Dec::ZERO);
            }
            while self.book.len(side) < p.min_levels {
                let worst = match side {
                    Side::Bid => self.book.coverage().low,
                    Side::Ask => self.book.coverage().high,
                };
                let Some(w) = worst else { break };
                let gap = self.rng.gen_range(1..=p.max_gap);
                let t = match side {
                    Side::Bid => self.ticks(w) - gap,
                    Side::Ask => self.ticks(w) + gap,
                };
                if t <= 0 {
                    break;
                }
                let q = self.qty();
                self.apply(&mut out, side, self.price(t), q);
            }
        }
        if out.is_empty() {
            // Every step carries at least one change so every venue sends something.
            if let Some(b) = self.book.best_bid() {
                let q = self.qty();
                self.apply(&mut out, Side::Bid, b.price, q);
            }
        }
        out
    }

    fn level_near_random_price(&mut self, side: Side) -> Option<crate::book::Level> {
        let c = self.book.coverage();
        let (lo, hi) = match side {
            Side::Bid => (c.low?, self.book.best_bid()?.price),
            Side::Ask => (self.book.best_ask()?.price, c.high?),
        };
        let t = self.rng.gen_range(self.ticks(lo)..=self.ticks(hi));
        self.book.side_in(side, self.price(t), hi).next()
    }

    fn apply(&mut self, out: &mut Vec<Change>, side: Side, price: Dec, qty: Dec) {
        self.book.set(side, price, qty);
        out.push(Change { side, price, qty });
    }

    fn tops(&self, mid_cents: i64) -> (i64, i64) {
        let tick = self.profile.tick;
        let mid_raw = mid_cents as i128 * (UNIT / 100);
        let bid = ((mid_raw - tick * self.profile.spread as i128 / 2) / tick) as i64;
        (bid, bid + self.profile.spread)
    }

    fn ticks(&self, price: Dec) -> i64 {
        (price.raw() / self.profile.tick) as i64
    }

    fn price(&self, ticks: i64) -> Dec {
        Dec::from_raw(ticks as i128 * self.profile.tick)
    }

    fn qty(&mut self) -> Dec {
        let p = self.profile;
        let pow = self.rng.gen_range(0..=p.max_qty_pow);
        let steps = self
            .rng
            .gen_range(1..=9 * 10u64.pow(pow))
            .max(p.min_qty_steps);
        Dec::from_raw(steps as i128 * p.qty_step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn books_stay_valid_and_changes_replay_exactly() {
        for venue in Venue::ALL {
            let mut m = VenueMarket::new(venue, 42);
            let mut replay = m.book().clone();
            let p = *m.profile();
            for _ in 0..300 {
                let changes = m.step();
                assert!(!changes.is_empty());
                for c in changes {
                    replay.set(c.side, c.price, c.qty);
                }
                let b = m.book();
                assert!(!b.is_crossed(), "{venue} crossed");
                for side in [Side::Bid, Side::Ask] {
                    assert!(b.len(side) <= p.max_levels && b.len(side) >= p.min_levels);
                }
            }
            assert_eq!(&replay, m.book(), "{venue}");
            let mid = m.book().mid().expect("two sides");
            assert!(mid > Dec::from_int(80_000) && mid < Dec::from_int(100_000));
        }
    }

    #[test]
    fn same_seed_same_market() {
        let mut a = VenueMarket::new(Venue::Kraken, 9);
        let mut b = VenueMarket::new(Venue::Kraken, 9);
        let mut c = VenueMarket::new(Venue::Kraken, 10);
        assert_eq!(a.book(), b.book());
        assert_ne!(a.book(), c.book());
        for _ in 0..50 {
            assert_eq!(a.step(), b.step());
            c.step();
        }
        assert_eq!(a.book(), b.book());
    }

    #[test]
    fn venues_follow_one_mid() {
        let books: Vec<Book> = Venue::ALL
            .iter()
            .map(|&v| {
                let mut m = VenueMarket::new(v, 5);
                for _ in 0..200 {
                    m.step();
                }
                m.book().clone()
            })
            .collect();
        let mids: Vec<Dec> = books.iter().map(|b| b.mid().expect("mid")).collect();
        let lo = mids.iter().min().expect("four");
        let hi = mids.iter().max().expect("four");
        // Premiums differ by a few dollars and noise by cents: the venues stay within $15.
        assert!(hi.saturating_sub(*lo) < Dec::from_int(15), "{mids:?}");
    }
}
