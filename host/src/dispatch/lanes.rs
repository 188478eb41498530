//! Keyed parallelism: every entry gets a lane key, and a batch is split into lanes that run
//! side by side, each in stream order. Entries whose `ordering_key` values are equal share a
//! key, so they are handled in order; with `concurrency = 1` all entries share one key; with
//! more and no ordering key every entry has its own.

use watchtower_events::wire::FIELD_DATA;

use crate::redis::StreamEntry;

/// The ordering key of `entry` as a number: equal numbers must be handled in order.
pub fn lane_key(entry: &StreamEntry, concurrency: usize, ordering_key: Option<&str>) -> u64 {
    match (concurrency, ordering_key) {
        (0 | 1, _) => 0,
        (_, Some(key)) => fnv1a(&key_value(entry, key)),
        (_, None) => fnv1a(entry.id.as_bytes()),
    }
}

/// Splits keyed entries into at most `lanes` lanes, keeping stream order within each lane
/// and equal keys in one lane (never returns empty lanes).
pub fn assign<T>(entries: Vec<(u64, T)>, lanes: usize) -> Vec<Vec<(u64, T)>> {
    let lanes = lanes.max(1);
    if lanes == 1 {
        return vec![entries];
    }
    let mut out: Vec<Vec<(u64, T)>> = (0..lanes).map(|_| Vec::new()).collect();
    for (key, entry) in entries {
        let lane = usize::try_from(key % lanes as u64).unwrap_or(0);
        out[lane].push((key, entry));
    }
    out.retain(|lane| !lane.is_empty());
    out
}

/// The raw JSON of top-level `data` field `key`, or empty when absent or unreadable (all
/// such entries share one key, which keeps them in order among themselves).
fn key_value(entry: &StreamEntry, key: &str) -> Vec<u8> {
    let Some(fields) = &entry.fields else {
        return Vec::new();
    };
    let Some((_, data)) = fields.iter().find(|(name, _)| name == FIELD_DATA) else {
        return Vec::new();
    };
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(data)
        .ok()
        .and_then(|map| map.get(key).map(|v| v.to_string().into_bytes()))
        .unwrap_or_default()
}

/// A hash that is the same in every process, so lane choice does not depend on the host.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, truck: &str) -> StreamEntry {
        StreamEntry {
            id: id.to_owned(),
            fields: Some(vec![(
                "data".to_owned(),
                format!(r#"{{"truck_id":"{truck}"}}"#).into_bytes(),
            )]),
            delivery_count: 1,
        }
    }

    fn keyed(
        entries: Vec<StreamEntry>,
        concurrency: usize,
        key: Option<&str>,
    ) -> Vec<(u64, StreamEntry)> {
        entries
            .into_iter()
            .map(|e| (lane_key(&e, concurrency, key), e))
            .collect()
    }

    #[test]
    fn equal_keys_share_a_lane_in_stream_order() {
        let entries = (0..40)
            .map(|i| entry(&format!("{i}-0"), &format!("t{}", i % 5)))
            .collect();
        let lanes = assign(keyed(entries, 4, Some("truck_id")), 4);
        for lane in &lanes {
            let ids: Vec<u32> = lane
                .iter()
                .map(|(_, e)| e.id.trim_end_matches("-0").parse().unwrap())
                .collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "order kept in {ids:?}");
        }
        for truck in 0..5 {
            let want = format!("\"t{truck}\"").into_bytes();
            let holding = lanes
                .iter()
                .filter(|lane| lane.iter().any(|(_, e)| key_value(e, "truck_id") == want))
                .count();
            assert_eq!(holding, 1, "truck t{truck} is in exactly one lane");
        }
    }

    #[test]
    fn concurrency_one_puts_everything_under_one_key() {
        let a = entry("1-0", "a");
        let b = entry("2-0", "b");
        assert_eq!(
            lane_key(&a, 1, Some("truck_id")),
            lane_key(&b, 1, Some("truck_id"))
        );
        let lanes = assign(keyed(vec![a, b], 1, Some("truck_id")), 1);
        assert_eq!(lanes.len(), 1);
        assert_eq!(lanes[0].len(), 2);
    }

    #[test]
    fn without_an_ordering_key_every_entry_has_its_own_key() {
        let a = entry("1-0", "x");
        let b = entry("2-0", "x");
        assert_ne!(lane_key(&a, 4, None), lane_key(&b, 4, None));
    }
}
