//! TensorBoard event files of a run's scalars, so `tensorboard --logdir SAVE_DIR` plots them.
//!
//! The file is rewritten from the run's history after every epoch (atomically, like every
//! other file of a run), so a resumed run's curves have no gaps and no duplicates. Format:
//! TFRecord framing (length, masked CRC-32C of the length, `Event` protobuf, masked CRC-32C of
//! the data) around hand-encoded `Event { wall_time, step, file_version | summary }` messages.

use std::path::Path;

use super::history::EpochLog;
use crate::error::Result;

/// The event file's name inside the run's folder (`tfevents` is what TensorBoard looks for).
pub const EVENTS_FILE: &str = "events.out.tfevents.0.reid";

/// CRC-32C (Castagnoli), as TFRecord uses it.
pub fn crc32c(data: &[u8]) -> u32 {
    const POLY: u32 = 0x82f6_3b78;
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A length-delimited protobuf field.
fn bytes_field(field: u32, data: &[u8], out: &mut Vec<u8>) {
    varint(((field << 3) | 2) as u64, out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

fn event(wall_time: f64, step: i64, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = vec![(1 << 3) | 1];
    out.extend_from_slice(&wall_time.to_le_bytes());
    out.push(2 << 3);
    varint(step as u64, &mut out);
    body(&mut out);
    out
}

/// `Event.summary` with one `simple_value` per (tag, value).
fn scalars(wall_time: f64, step: i64, values: &[(String, f32)]) -> Vec<u8> {
    let mut summary = Vec::new();
    for (tag, value) in values {
        let mut v = Vec::new();
        bytes_field(1, tag.as_bytes(), &mut v);
        v.push((2 << 3) | 5);
        v.extend_from_slice(&value.to_le_bytes());
        bytes_field(1, &v, &mut summary);
    }
    event(wall_time, step, |out| bytes_field(5, &summary, out))
}

fn record(data: &[u8], out: &mut Vec<u8>) {
    let length = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc(&length).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// The event file for `history`: per epoch, the training loss, accuracy and learning rate and
/// each target's mAP / Rank-1 / Rank-5 / mINP, at step = epoch; `started` is the run's start
/// (Unix seconds), epochs are placed at their cumulative training time after it.
pub fn events(history: &[EpochLog], started: f64) -> Vec<u8> {
    let mut out = Vec::new();
    let header = event(started, 0, |out| bytes_field(3, b"brain.Event:2", out));
    record(&header, &mut out);
    let mut elapsed = 0.0;
    for epoch in history {
        elapsed += epoch.seconds;
        let mut values = vec![
            ("Train/loss".to_string(), epoch.loss as f32),
            ("Train/acc".to_string(), epoch.accuracy as f32),
            ("Train/lr".to_string(), epoch.lr as f32),
        ];
        for e in &epoch.eval {
            for (name, value) in [
                ("mAP", e.map),
                ("Rank-1", e.rank1),
                ("Rank-5", e.rank5),
                ("mINP", e.minp),
            ] {
                values.push((format!("Test/{}/{name}", e.target), value as f32));
            }
        }
        record(
            &scalars(started + elapsed, epoch.epoch as i64, &values),
            &mut out,
        );
    }
    out
}

/// Rewrites the run's event file from its history.
pub fn write_events(save_dir: &Path, history: &[EpochLog], started: f64) -> Result<()> {
    crate::formats::npy::write_atomically(&save_dir.join(EVENTS_FILE), &events(history, started))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // RFC 3720, B.4: CRC-32C of "123456789".
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
    }
}
