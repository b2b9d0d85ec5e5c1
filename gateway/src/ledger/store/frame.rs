//! Record framing for the file backend: `u32 length || u32 CRC-32C(payload) || payload`.
//!
//! The CRC only detects torn or corrupted writes (a crash mid-append, a bad disk); it is no
//! defence against a deliberate edit, which the hash chain and the signed checkpoints catch.

use std::io::{self, Read};

/// Bytes before each payload.
pub const HEADER_LEN: usize = 8;
/// The largest payload accepted (an entry is bounded by its encoding limits well below this).
pub const MAX_PAYLOAD: u32 = 16 * 1024 * 1024;

/// CRC-32C (Castagnoli) lookup table, built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc = CRC_TABLE[((crc ^ u32::from(*byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Appends one framed payload to `out`.
pub fn push_frame(out: &mut Vec<u8>, payload: &[u8]) {
    // Payloads are bounded by MAX_PAYLOAD (entries are far smaller), so the length fits in u32.
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
}

/// One frame found by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Byte offset of the frame header.
    pub offset: u64,
    /// The payload.
    pub payload: Vec<u8>,
    /// False when the stored CRC does not match the payload.
    pub crc_ok: bool,
}

/// How a scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// The file ended exactly after the last frame.
    Clean,
    /// The last frame is incomplete, fails its CRC or is zero-filled: a write that was cut short
    /// (and so never acknowledged). `offset` is where the good data ends.
    TornTail {
        /// Where the torn frame starts.
        offset: u64,
        /// Why it is considered torn.
        reason: &'static str,
    },
    /// A frame in the middle has an impossible length: the frames after it cannot be found.
    Damaged {
        /// Where the unreadable frame starts.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Reads every frame of `reader` (whose total length is `file_len`), calling `visit` for each.
///
/// A CRC mismatch on a frame that is followed by more frames is reported through
/// `Frame::crc_ok` (damage to examine, not to repair); on the last frame it ends the scan as a
/// torn tail.
pub fn scan<R: Read>(
    reader: R,
    file_len: u64,
    mut visit: impl FnMut(Frame),
) -> io::Result<ScanEnd> {
    let mut reader = io::BufReader::with_capacity(1 << 20, reader);
    let mut offset = 0u64;
    loop {
        if offset == file_len {
            return Ok(ScanEnd::Clean);
        }
        let remaining = file_len - offset;
        if remaining < HEADER_LEN as u64 {
            return Ok(ScanEnd::TornTail {
                offset,
                reason: "incomplete frame header",
            });
        }
        let mut header = [0u8; HEADER_LEN];
        reader.read_exact(&mut header)?;
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let end = offset + HEADER_LEN as u64 + u64::from(length);
        if length == 0 || length > MAX_PAYLOAD {
            if header == [0; HEADER_LEN] && rest_is_zero(&mut reader)? {
                return Ok(ScanEnd::TornTail {
                    offset,
                    reason: "zero-filled tail",
                });
            }
            return Ok(ScanEnd::Damaged {
                offset,
                reason: "impossible frame length",
            });
        }
        if end > file_len {
            return Ok(ScanEnd::TornTail {
                offset,
                reason: "frame extends past the end of the file",
            });
        }
        let mut payload = vec![0u8; length as usize];
        reader.read_exact(&mut payload)?;
        let crc_ok = crc32c(&payload) == crc;
        if !crc_ok && end == file_len {
            return Ok(ScanEnd::TornTail {
                offset,
                reason: "last frame fails its checksum",
            });
        }
        visit(Frame {
            offset,
            payload,
            crc_ok,
        });
        offset = end;
    }
}

fn rest_is_zero<R: Read>(reader: &mut R) -> io::Result<bool> {
    let mut buf = [0u8; 8192];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|b| *b != 0) {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_value() {
        // The CRC-32C check value (RFC 3720 appendix B.4 style): "123456789" → e3069283.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn scan_finds_frames_and_torn_tails() {
        let mut data = Vec::new();
        push_frame(&mut data, b"one");
        push_frame(&mut data, b"two");
        let mut seen = Vec::new();
        let end = scan(&data[..], data.len() as u64, |f| seen.push(f.payload)).unwrap();
        assert_eq!(end, ScanEnd::Clean);
        assert_eq!(seen, vec![b"one".to_vec(), b"two".to_vec()]);
        let cut = &data[..data.len() - 1];
        let end = scan(cut, cut.len() as u64, |_| {}).unwrap();
        assert!(matches!(end, ScanEnd::TornTail { offset: 11, .. }));
        let mut zeros = data.clone();
        zeros.extend_from_slice(&[0; 100]);
        let end = scan(&zeros[..], zeros.len() as u64, |_| {}).unwrap();
        assert!(matches!(end, ScanEnd::TornTail { offset: 22, .. }));
        let mut bad = data.clone();
        bad[9] ^= 1;
        let mut flags = Vec::new();
        let end = scan(&bad[..], bad.len() as u64, |f| flags.push(f.crc_ok)).unwrap();
        assert_eq!((end, flags), (ScanEnd::Clean, vec![false, true]));
    }
}
