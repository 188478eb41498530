//! Realistic `position.updated` traffic: a fleet of trucks reporting GPS fixes of about
//! 300 bytes each, 5 % of them above the 90 km/h limit, in the SPEC wire format.
//!
//! The numbers come from a seeded generator, so every run (and every machine) handles the
//! same mix of payloads. Event ids are UUID v7 and timestamps the time of writing, as a real
//! publisher would send them.

use std::time::Instant;

use anyhow::Context as _;
use redis::aio::MultiplexedConnection;
use serde::Serialize;
use watchtower_events::{Envelope, POSITION_UPDATED, PositionUpdated, now_rfc3339, wire};

/// Trucks in the simulated fleet.
pub const TRUCKS: usize = 500;
/// Share of positions above the speed limit in throughput runs.
pub const SPEEDING_SHARE: f64 = 0.05;
/// `XADD`s per pipeline while filling.
const PIPELINE_DEPTH: usize = 1_000;

/// How often a fix is above the limit.
#[derive(Debug, Clone, Copy)]
pub enum Speeding {
    /// This share of fixes, at random.
    Share(f64),
    /// Every fix (each one makes `speed-alert` publish an alert).
    Always,
}

/// The small, fast generator behind every number (SplitMix64): no dependency, and the same
/// sequence everywhere for a seed.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A UUID-shaped id (lower-case hex, 8-4-4-4-12).
    fn uuid_like(&mut self) -> String {
        let (a, b) = (self.next_u64(), self.next_u64());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

/// One truck's state between fixes.
#[derive(Debug, Clone)]
struct Truck {
    id: String,
    number: String,
    lat: f64,
    lng: f64,
    heading: f64,
    odometer_km: f64,
    fuel_pct: f64,
}

/// The payload as a telematics gateway sends it: the fields `position.updated` requires plus
/// the extras real devices report (which handlers are free to ignore).
#[derive(Serialize)]
struct Fix<'a> {
    #[serde(flatten)]
    position: PositionUpdated,
    recorded_at: &'a str,
    altitude_m: f64,
    accuracy_m: f64,
    satellites: u32,
    odometer_km: f64,
    fuel_level_pct: f64,
    ignition: bool,
    source: &'static str,
}

/// A fleet of [`TRUCKS`] trucks driving around the Netherlands.
#[derive(Debug, Clone)]
pub struct Fleet {
    rng: Rng,
    trucks: Vec<Truck>,
}

impl Fleet {
    /// A fleet whose every fix follows from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let trucks = (0..TRUCKS)
            .map(|n| Truck {
                id: rng.uuid_like(),
                number: format!(
                    "NL-{:03}-{}{}",
                    n,
                    char::from(b'A' + (rng.below(26) as u8)),
                    char::from(b'A' + (rng.below(26) as u8))
                ),
                lat: rng.range(51.3, 53.4),
                lng: rng.range(3.6, 7.1),
                heading: rng.range(0.0, 360.0),
                odometer_km: rng.range(20_000.0, 900_000.0),
                fuel_pct: rng.range(15.0, 100.0),
            })
            .collect();
        Fleet { rng, trucks }
    }

    /// The JSON payload of the next fix of a random truck.
    pub fn next_payload(&mut self, speeding: Speeding) -> String {
        let rng = &mut self.rng;
        let speeding = match speeding {
            Speeding::Share(share) => rng.unit() < share,
            Speeding::Always => true,
        };
        let speed = if speeding {
            rng.range(91.0, 135.0)
        } else {
            rng.range(0.0, 89.5)
        };
        let index = rng.below(self.trucks.len());
        let truck = &mut self.trucks[index];
        truck.heading = (truck.heading + rng.range(-20.0, 20.0)).rem_euclid(360.0);
        let step_km = speed / 3600.0 * 5.0;
        truck.lat += step_km / 111.0 * truck.heading.to_radians().cos();
        truck.lng += step_km / 68.0 * truck.heading.to_radians().sin();
        truck.odometer_km += step_km;
        truck.fuel_pct = (truck.fuel_pct - step_km * 0.03).max(5.0);

        let recorded_at = now_rfc3339();
        let fix = Fix {
            position: PositionUpdated {
                truck_id: truck.id.clone(),
                truck_number: truck.number.clone(),
                lat: round(truck.lat, 6),
                lng: round(truck.lng, 6),
                speed: round(speed, 1),
                heading: Some(round(truck.heading, 1)),
            },
            recorded_at: &recorded_at,
            altitude_m: round(rng.range(-5.0, 120.0), 1),
            accuracy_m: round(rng.range(2.0, 15.0), 1),
            satellites: 4 + rng.below(9) as u32,
            odometer_km: round(truck.odometer_km, 2),
            fuel_level_pct: round(truck.fuel_pct, 1),
            ignition: speed > 0.5,
            source: "gateway-3",
        };
        // A struct of plain fields always serializes.
        serde_json::to_string(&fix).unwrap_or_default()
    }
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// A `position.updated` envelope around `data`, as a publisher would send it.
pub fn envelope(data: String) -> Envelope {
    Envelope::new(uuid::Uuid::now_v7().to_string(), POSITION_UPDATED, data)
        .with_metadata("producer", "watchtower-bench")
}

/// What filling a stream produced.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Filled {
    /// Entries written.
    pub events: u64,
    /// Mean length of the `data` field, bytes.
    pub mean_payload_bytes: f64,
    /// Mean size of a whole entry (all field names and values), bytes.
    pub mean_entry_bytes: f64,
    /// Entries per second of the pipelined `XADD`s (generation included).
    pub xadd_per_sec: f64,
}

/// Appends `events` positions of `fleet` to `stream`, [`PIPELINE_DEPTH`] `XADD`s per round
/// trip.
pub async fn fill(
    conn: &mut MultiplexedConnection,
    stream: &str,
    events: u64,
    fleet: &mut Fleet,
) -> anyhow::Result<Filled> {
    let started = Instant::now();
    let (mut payload_bytes, mut entry_bytes) = (0u64, 0u64);
    let mut written = 0u64;
    while written < events {
        let chunk = (events - written).min(PIPELINE_DEPTH as u64);
        let mut pipe = redis::pipe();
        for _ in 0..chunk {
            let envelope = envelope(fleet.next_payload(Speeding::Share(SPEEDING_SHARE)));
            payload_bytes += envelope.data.len() as u64;
            let fields = wire::encode(&envelope);
            entry_bytes += fields
                .iter()
                .map(|(k, v)| (k.len() + v.len()) as u64)
                .sum::<u64>();
            pipe.xadd(stream, "*", &fields).ignore();
        }
        pipe.query_async::<()>(conn)
            .await
            .with_context(|| format!("XADD to {stream}"))?;
        written += chunk;
    }
    let n = events.max(1) as f64;
    Ok(Filled {
        events,
        mean_payload_bytes: payload_bytes as f64 / n,
        mean_entry_bytes: entry_bytes as f64 / n,
        xadd_per_sec: events as f64 / started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_positions_of_about_300_bytes() {
        let mut fleet = Fleet::new(7);
        let payloads: Vec<String> = (0..2_000)
            .map(|_| fleet.next_payload(Speeding::Share(SPEEDING_SHARE)))
            .collect();
        let mean = payloads.iter().map(String::len).sum::<usize>() / payloads.len();
        assert!((270..=340).contains(&mean), "mean payload {mean} bytes");
        let speeding = payloads
            .iter()
            .map(|p| serde_json::from_str::<PositionUpdated>(p).unwrap())
            .filter(|p| p.speed > 90.0)
            .count();
        assert!(
            (60..=140).contains(&speeding),
            "{speeding} of 2000 speeding"
        );
    }

    #[test]
    fn always_speeding_means_every_fix() {
        let mut fleet = Fleet::new(1);
        for _ in 0..200 {
            let p: PositionUpdated =
                serde_json::from_str(&fleet.next_payload(Speeding::Always)).unwrap();
            assert!(p.speed > 90.0, "{}", p.speed);
        }
    }

    #[test]
    fn entries_decode_as_the_host_decodes_them() {
        let mut fleet = Fleet::new(3);
        let envelope = envelope(fleet.next_payload(Speeding::Always));
        let decoded = wire::decode(&wire::encode(&envelope), Some(POSITION_UPDATED)).unwrap();
        assert_eq!(decoded, envelope);
    }
}
