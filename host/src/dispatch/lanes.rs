//! Keyed parallelism: a batch is split into lanes that run side by side, each in stream
//! order. Entries whose `ordering_key` values are equal always share a lane, so they are
//! handled in order; without an ordering key entries are dealt out round-robin.

use watchtower_events::wire::FIELD_DATA;

use crate::redis::StreamEntry;

/// Splits `entries` into at most `lanes` lanes (never returns empty lanes).
pub fn assign(
    entries: Vec<StreamEntry>,
    lanes: usize,
    ordering_key: Option<&str>,
) -> Vec<Vec<StreamEntry>> {
    let lanes = lanes.max(1);
    if lanes == 1 {
        return vec![entries];
    }
    let mut out: Vec<Vec<StreamEntry>> = (0..lanes).map(|_| Vec::new()).collect();
    for (index, entry) in entries.into_iter().enumerate() {
        let lane = match ordering_key {
            Some(key) => (fnv1a(&key_value(&entry, key)) % lanes as u64) as usize,
            None => index % lanes,
        };
        out[lane].push(entry);
    }
    out.retain(|lane| !lane.is_empty());
    out
}

/// The raw JSON of top-level `data` field `key`, or empty when absent or unreadable (all
/// such entries share one lane, which keeps them in order among themselves).
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

    #[test]
    fn equal_keys_share_a_lane_in_stream_order() {
        let entries = (0..40)
            .map(|i| entry(&format!("{i}-0"), &format!("t{}", i % 5)))
            .collect();
        let lanes = assign(entries, 4, Some("truck_id"));
        for lane in &lanes {
            let ids: Vec<u32> = lane
                .iter()
                .map(|e| e.id.trim_end_matches("-0").parse().unwrap())
                .collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "order kept in {ids:?}");
        }
        for truck in 0..5 {
            let holding = lanes
                .iter()
                .filter(|lane| {
                    lane.iter()
                        .any(|e| key_value(e, "truck_id") == format!("\"t{truck}\"").into_bytes())
                })
                .count();
            assert_eq!(holding, 1, "truck t{truck} is in exactly one lane");
        }
    }

    #[test]
    fn one_lane_keeps_the_batch_as_is() {
        let lanes = assign(
            vec![entry("1-0", "a"), entry("2-0", "b")],
            1,
            Some("truck_id"),
        );
        assert_eq!(lanes.len(), 1);
        assert_eq!(lanes[0].len(), 2);
    }

    #[test]
    fn without_a_key_entries_are_dealt_round_robin() {
        let entries = (0..6).map(|i| entry(&format!("{i}-0"), "x")).collect();
        let lanes = assign(entries, 3, None);
        assert_eq!(
            lanes.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![2, 2, 2]
        );
    }
}
