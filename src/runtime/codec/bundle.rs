//! Bundles: the datagrams a node sends one peer at one moment, carried as
//! one datagram.
//!
//! Once a save is durable, the flusher releases everything that waited for
//! it at once — under load, the votes or outcomes of dozens of transactions,
//! most to the same peer. Sent one by one, each costs a send, a receive and a
//! wake-up of the receiving thread; a bundle costs one of each.
//!
//! # Layout
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 4 | magic: `HAFB` ([`BUNDLE_MAGIC`]) |
//! | 4 | 2 | length of the first datagram, `u16`, little-endian |
//! | 6 | that | the first datagram, whole (header, tag, payload) |
//! | … | 2 + … | the next length and datagram, and so on to the end |
//!
//! A bundle holds at least two datagrams and at most [`MAX_DATAGRAM`] bytes;
//! each datagram in it is an ordinary haft datagram ([`super::open`] checks
//! its checksum and tag as if it had arrived alone), never a bundle. The
//! bundle itself adds no checksum: a damaged length makes the datagrams after
//! it fail their own checks.
//!
//! # What the receiver sees
//!
//! The datagrams of a bundle arrive together or not at all, in the order they
//! were packed. Both are behaviours of the network the models check against
//! (models/network.rs delivers any message at any time, or never): a bundle is
//! a few datagrams that happened to travel together.

use super::{DecodeError, HEADER_LEN, MAX_DATAGRAM};

/// The first four bytes of a bundle.
pub const BUNDLE_MAGIC: [u8; 4] = *b"HAFB";

/// What each datagram adds to a bundle besides its bytes: its length.
const LENGTH_LEN: usize = 2;

/// Whether `datagram` is a bundle (by its magic; [`unpack`] checks the rest).
pub fn is_bundle(datagram: &[u8]) -> bool {
    datagram.starts_with(&BUNDLE_MAGIC)
}

/// Packs `datagrams` (each a whole haft datagram of at most [`MAX_DATAGRAM`]
/// bytes) into as few datagrams as they fit in, keeping their order: runs of
/// two or more that fit together become bundles, and one that fits with no
/// neighbour goes as it is.
pub fn pack(datagrams: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut packed = Vec::new();
    // The run being gathered, and its size as a bundle.
    let mut run: Vec<Vec<u8>> = Vec::new();
    let mut size = BUNDLE_MAGIC.len();
    for datagram in datagrams {
        if !run.is_empty() && size + LENGTH_LEN + datagram.len() > MAX_DATAGRAM {
            packed.push(close(std::mem::take(&mut run)));
            size = BUNDLE_MAGIC.len();
        }
        size += LENGTH_LEN + datagram.len();
        run.push(datagram);
    }
    if !run.is_empty() {
        packed.push(close(run));
    }
    packed
}

/// One datagram for `run`: the datagram itself if it is alone, else a bundle.
fn close(mut run: Vec<Vec<u8>>) -> Vec<u8> {
    if run.len() == 1 {
        return run.pop().unwrap_or_default();
    }
    let size = BUNDLE_MAGIC.len() + run.iter().map(|d| LENGTH_LEN + d.len()).sum::<usize>();
    let mut bundle = Vec::with_capacity(size);
    bundle.extend_from_slice(&BUNDLE_MAGIC);
    for datagram in run {
        // Fits: a datagram longer than MAX_DATAGRAM < u16::MAX never joins a
        // run of two (it alone exceeds the bundle's limit).
        bundle.extend_from_slice(&(datagram.len() as u16).to_le_bytes());
        bundle.extend_from_slice(&datagram);
    }
    bundle
}

/// The datagrams in `bundle`, in order, or why it is malformed: a length that
/// runs past the end ([`DecodeError::Truncated`]), or a datagram too short to
/// hold a header, or fewer than two ([`DecodeError::BadHeader`]). Never
/// panics; the datagrams themselves are checked by [`super::open`].
pub fn unpack(bundle: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    if bundle.len() > MAX_DATAGRAM {
        return Err(DecodeError::Oversized {
            len: bundle.len(),
            max: MAX_DATAGRAM,
        });
    }
    let Some(mut rest) = bundle.strip_prefix(&BUNDLE_MAGIC[..]) else {
        let mut found = [0; 4];
        let start = &bundle[..bundle.len().min(4)];
        found[..start.len()].copy_from_slice(start);
        return Err(DecodeError::BadMagic { found });
    };
    let mut datagrams = Vec::new();
    while !rest.is_empty() {
        let Some((length, after)) = rest.split_first_chunk::<LENGTH_LEN>() else {
            return Err(DecodeError::Truncated {
                len: bundle.len(),
                needed: bundle.len() - rest.len() + LENGTH_LEN,
            });
        };
        let length = usize::from(u16::from_le_bytes(*length));
        if length < HEADER_LEN {
            return Err(DecodeError::BadHeader {
                reason: "a bundled datagram is shorter than a header",
            });
        }
        let Some((datagram, after)) = after.split_at_checked(length) else {
            return Err(DecodeError::Truncated {
                len: bundle.len(),
                needed: bundle.len() - after.len() + length,
            });
        };
        datagrams.push(datagram);
        rest = after;
    }
    if datagrams.len() < 2 {
        return Err(DecodeError::BadHeader {
            reason: "a bundle holds fewer than two datagrams",
        });
    }
    Ok(datagrams)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::codec::{MAX_FRAGMENT, encode_bytes, open};

    fn datagram(sender: u64, payload_len: usize) -> Vec<u8> {
        encode_bytes(sender, &vec![sender as u8; payload_len]).expect("fits in a datagram")
    }

    #[test]
    fn small_datagrams_travel_in_one_bundle_and_come_out_whole_and_in_order() {
        let sent: Vec<Vec<u8>> = (1..=30).map(|i| datagram(i, 40)).collect();
        let packed = pack(sent.clone());
        assert_eq!(packed.len(), 1);
        assert!(is_bundle(&packed[0]));
        let received = unpack(&packed[0]).expect("a well-formed bundle");
        assert_eq!(received, sent.iter().map(Vec::as_slice).collect::<Vec<_>>());
        for (i, datagram) in received.iter().enumerate() {
            assert_eq!(open(datagram, None).expect("intact").sender, i as u64 + 1);
        }
    }

    #[test]
    fn a_lone_datagram_goes_as_it_is_and_a_full_one_is_never_bundled() {
        let one = datagram(1, 10);
        assert_eq!(pack(vec![one.clone()]), vec![one.clone()]);
        let full = datagram(2, MAX_FRAGMENT);
        let packed = pack(vec![one.clone(), full.clone(), one.clone()]);
        assert_eq!(packed, vec![one.clone(), full, one]);
        assert!(pack(Vec::new()).is_empty());
    }

    #[test]
    fn bundles_split_where_the_next_datagram_would_not_fit() {
        let sent: Vec<Vec<u8>> = (0..5).map(|i| datagram(i, 20_000)).collect();
        let packed = pack(sent.clone());
        assert_eq!(packed.len(), 2, "three of about 20 KB fit in 65,000 bytes");
        assert!(packed.iter().all(|d| d.len() <= MAX_DATAGRAM));
        let received: Vec<&[u8]> = packed
            .iter()
            .flat_map(|d| unpack(d).expect("well-formed"))
            .collect();
        assert_eq!(received, sent.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }

    #[test]
    fn malformed_bundles_are_refused_with_what_was_wrong() {
        let good = pack(vec![datagram(1, 8), datagram(2, 8)]).remove(0);
        // Cut anywhere inside: a length or a datagram runs past the end.
        for cut in BUNDLE_MAGIC.len() + 1..good.len() {
            let error = unpack(&good[..cut]).expect_err("cut short");
            assert!(
                matches!(
                    error,
                    DecodeError::Truncated { .. } | DecodeError::BadHeader { .. }
                ),
                "cut at {cut}: {error}"
            );
        }
        let only_magic = BUNDLE_MAGIC.to_vec();
        assert!(matches!(
            unpack(&only_magic),
            Err(DecodeError::BadHeader { .. })
        ));
        let mut short = BUNDLE_MAGIC.to_vec();
        short.extend_from_slice(&3u16.to_le_bytes());
        short.extend_from_slice(&[0; 3]);
        assert!(matches!(unpack(&short), Err(DecodeError::BadHeader { .. })));
        assert!(matches!(unpack(b"HAFT"), Err(DecodeError::BadMagic { .. })));
        let oversized = vec![b'H'; MAX_DATAGRAM + 1];
        assert!(matches!(
            unpack(&oversized),
            Err(DecodeError::Oversized { .. })
        ));
    }
}
