//! Fuzzes the DATA decoder and checks that it is independent of how the input is split across reads:
//! feeding the bytes in two pieces must give the same content, end point and verdict as feeding them at
//! once. A decoder that depends on read boundaries is how SMTP smuggling starts. Content is compared
//! only for messages without a problem: a message with one is discarded whatever was decoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_in::data::DataReceiver;

const MAX_SIZE: u64 = 4096;
const MAX_LINE: usize = 100;

fn decode(pieces: &[&[u8]]) -> (Vec<u8>, Option<usize>, Option<smtp_in::data::DataProblem>) {
    let mut receiver = DataReceiver::new(MAX_SIZE, MAX_LINE);
    let mut content = Vec::new();
    let mut offset = 0;
    for piece in pieces {
        let progress = receiver.feed(piece, &mut content);
        if progress.finished {
            return (content, Some(offset + progress.consumed), receiver.problem());
        }
        assert_eq!(progress.consumed, piece.len(), "an unfinished feed consumes everything");
        offset += piece.len();
    }
    (content, None, receiver.problem())
}

fuzz_target!(|input: (u16, Vec<u8>)| {
    let (split, bytes) = input;
    let split = usize::from(split) % (bytes.len() + 1);
    let whole = decode(&[&bytes]);
    let pieces = decode(&[&bytes[..split], &bytes[split..]]);
    assert_eq!((whole.1, whole.2), (pieces.1, pieces.2), "end of data and verdict");
    if whole.2.is_none() {
        assert_eq!(whole.0, pieces.0, "content of a good message");
    }
    assert!(whole.0.len() as u64 <= MAX_SIZE);
});
