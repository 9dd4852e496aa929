//! Consistent hashing: an immutable ring of weighted nodes, preference lists,
//! migration plans and bounded loads.
//!
//! A [`Ring`] is a snapshot: its members, their weights and an epoch. Each node
//! of weight `w` owns `vnodes × w` points on the 64-bit circle; a key belongs to
//! the first point at or clockwise after the key's position, wrapping past
//! `u64::MAX` to `0`. Where keys and points sit is fixed by the byte layouts
//! documented in [`key_position`] and [`point_position`], so every process
//! computes the same placements.
//!
//! Changing the membership never mutates a ring: [`Ring::with_node`],
//! [`Ring::without_node`] and [`Ring::reweighted`] return a new ring whose epoch
//! is one higher, and [`Ring::migration_to`] reports the key ranges whose owners
//! (or preference lists) differ between two rings — the work the handoff protocol
//! carries out.
//!
//! ```
//! use haft::ring::Ring;
//!
//! let ring = Ring::builder(160)
//!     .node("cache-a", 1)
//!     .node("cache-b", 1)
//!     .node("cache-c", 2) // twice the points, about twice the keys
//!     .build()?;
//! let owner = ring.owner(b"user:42");
//! let replicas = ring.preference_list(b"user:42", 2);
//! assert_eq!(replicas.owner(), owner);
//!
//! // A new member: a new ring one epoch later, and the ranges that move to it.
//! let grown = ring.with_node("cache-d", 1)?;
//! assert_eq!(grown.epoch(), ring.epoch() + 1);
//! let plan = ring.migration_to(&grown, 1);
//! assert!(plan.moves().iter().all(|moved| moved.to()[0].as_str() == "cache-d"));
//! # Ok::<(), haft::ring::RingError>(())
//! ```

mod bounded;
mod error;
mod layout;
mod migration;
mod position;
mod preference;
pub mod seed;

use std::fmt;

pub use bounded::BoundedAssignment;
pub use error::RingError;
pub use layout::{Epoch, Layout};
pub use migration::{KeyRange, MigrationPlan, RangeMove};
pub use position::{key_position, point_position};
pub use preference::PreferenceList;

/// The id of a physical node; its UTF-8 bytes are what [`point_position`] hashes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(Box<str>);

impl NodeId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for NodeId {
    fn from(id: &str) -> NodeId {
        NodeId(id.into())
    }
}

impl From<String> for NodeId {
    fn from(id: String) -> NodeId {
        NodeId(id.into_boxed_str())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A physical node of a ring and its weight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The node's id.
    pub id: NodeId,
    /// How many units of `vnodes` points it owns (at least 1).
    pub weight: u32,
}

/// Collects the members of a first ring. Errors are reported by
/// [`RingBuilder::build`], so that a chain of [`RingBuilder::node`] calls needs
/// no `?` after each one.
#[derive(Clone, Debug)]
pub struct RingBuilder {
    vnodes: u32,
    epoch: u64,
    members: Vec<Member>,
}

impl RingBuilder {
    /// Adds a node of the given weight.
    #[must_use]
    pub fn node(mut self, id: impl Into<NodeId>, weight: u32) -> RingBuilder {
        self.members.push(Member {
            id: id.into(),
            weight,
        });
        self
    }

    /// Sets the epoch of the ring (0 unless given).
    #[must_use]
    pub fn epoch(mut self, epoch: u64) -> RingBuilder {
        self.epoch = epoch;
        self
    }

    /// Builds the ring. The order in which nodes were added does not matter.
    pub fn build(self) -> Result<Ring, RingError> {
        Ring::from_members(self.epoch, self.vnodes, self.members)
    }
}

/// An immutable consistent-hash ring at one epoch.
///
/// Invariants: the members are sorted by id and distinct, each of weight ≥ 1;
/// `points` is sorted by position, then by owner. Two points at the same
/// position (a 64-bit collision) are thus ordered by member id, so placements
/// never depend on insertion order.
#[derive(Clone)]
pub struct Ring {
    epoch: u64,
    vnodes: u32,
    members: Vec<Member>,
    /// The points sorted, followed by `SCAN_WIDTH` sentinels at `u64::MAX`
    /// so that a lookup may read a fixed number of points past any bucket's
    /// start without a bounds branch. See [`Ring::points`].
    padded: Vec<Point>,
    /// `buckets[j]` is the index of the first point at or after `j << bucket_shift`;
    /// one more entry holds `points.len()`. With about one point per bucket,
    /// a lookup reads a bucket bound and one or two points instead of the
    /// log₂(points) scattered reads of a binary search over the whole array.
    /// Whether every point's `successors` are filled in: member indices must
    /// fit u16 with `NO_NODE` to spare.
    successors_known: bool,
    /// The hot copy of the points that [`Ring::owner`] and short preference
    /// lists read: one `u64` per point (see [`Packed`]), half a [`Point`], so
    /// twice as many fit each cache level. Empty when member indices do not
    /// fit 16 bits.
    packed: Packed,
    buckets: Vec<u32>,
    bucket_shift: u32,
}

/// A summary: the points are thousands of numbers that say nothing to a reader.
impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("epoch", &self.epoch)
            .field("vnodes", &self.vnodes)
            .field("members", &self.members)
            .field("points", &self.point_count())
            .finish_non_exhaustive()
    }
}

/// Two rings are equal when they have the same epoch, vnodes and members; the
/// points follow from those.
impl PartialEq for Ring {
    fn eq(&self, other: &Ring) -> bool {
        self.epoch == other.epoch && self.vnodes == other.vnodes && self.members == other.members
    }
}

impl Eq for Ring {}

impl Ring {
    /// Starts a ring in which a node of weight `w` owns `vnodes × w` points.
    pub fn builder(vnodes: u32) -> RingBuilder {
        RingBuilder {
            vnodes,
            epoch: 0,
            members: Vec::new(),
        }
    }

    /// Builds a ring from its members, in any order.
    pub fn from_members(
        epoch: u64,
        vnodes: u32,
        mut members: Vec<Member>,
    ) -> Result<Ring, RingError> {
        if vnodes == 0 {
            return Err(RingError::ZeroVnodes);
        }
        if members.is_empty() {
            return Err(RingError::Empty);
        }
        members.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(pair) = members.windows(2).find(|pair| pair[0].id == pair[1].id) {
            return Err(RingError::DuplicateNode {
                id: pair[0].id.clone(),
            });
        }
        let mut total_points = 0usize;
        for member in &members {
            total_points += points_of(member, vnodes)? as usize;
        }
        if u32::try_from(total_points).is_err() {
            let largest = members
                .iter()
                .max_by_key(|m| m.weight)
                .unwrap_or(&members[0]);
            return Err(RingError::TooManyPoints {
                id: largest.id.clone(),
                vnodes,
                weight: largest.weight,
            });
        }

        let mut points = Vec::with_capacity(total_points + SCAN_WIDTH);
        for (index, member) in members.iter().enumerate() {
            // `index` < members.len() ≤ total_points, which fits u32 (checked above).
            let index = index as u32;
            for vnode in 0..points_of(member, vnodes)? {
                points.push(Point {
                    position: point_position(member.id.as_str(), vnode),
                    owner: index,
                    successors: [NO_NODE; 2],
                });
            }
        }
        // Members are sorted by id, so ordering ties by member index orders them by id.
        points.sort_unstable();
        let successors_known = members.len() < usize::from(NO_NODE);
        if successors_known {
            fill_successors(&mut points, members.len());
        }
        let (buckets, bucket_shift) = bucket_index(&points);
        let packed = if successors_known {
            Packed::new(&points, members.len())
        } else {
            Packed::default()
        };
        let sentinel = Point {
            position: u64::MAX,
            owner: 0,
            successors: [NO_NODE; 2],
        };
        points.extend([sentinel; SCAN_WIDTH]);
        Ok(Ring {
            epoch,
            vnodes,
            members,
            padded: points,
            successors_known,
            packed,
            buckets,
            bucket_shift,
        })
    }

    // ---- getters ----

    /// The epoch: how many membership changes led from the first ring to this one.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Points per unit of weight.
    pub fn vnodes(&self) -> u32 {
        self.vnodes
    }

    /// The members, sorted by id.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The number of physical nodes (never 0).
    pub fn node_count(&self) -> usize {
        self.members.len()
    }

    /// The number of points: the sum of `vnodes × weight` over the members.
    pub fn point_count(&self) -> usize {
        self.points().len()
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: &str) -> bool {
        self.member_index(id).is_some()
    }

    /// The weight of member `id`.
    pub fn weight(&self, id: &str) -> Result<u32, RingError> {
        self.member_index(id)
            .map(|index| self.members[index].weight)
            .ok_or_else(|| self.unknown(id))
    }

    /// The bytes this ring holds on the heap (the points with their owners, the
    /// bucket index and the members), not counting `size_of::<Ring>()` itself.
    pub fn heap_bytes(&self) -> usize {
        self.padded.capacity() * size_of::<Point>()
            + self.packed.words.capacity() * size_of::<u64>()
            + self.buckets.capacity() * size_of::<u32>()
            + self.members.capacity() * size_of::<Member>()
            + self.members.iter().map(|m| m.id.0.len()).sum::<usize>()
    }

    // ---- lookups ----

    /// The node that owns `key`: the owner of the first point at or clockwise
    /// after [`key_position`]`(key)`. Expected O(1), at worst O(log points); no
    /// allocation.
    #[inline]
    pub fn owner(&self, key: &[u8]) -> &NodeId {
        self.owner_at(key_position(key))
    }

    /// The node that owns the ring position `position`.
    #[inline]
    pub fn owner_at(&self, position: u64) -> &NodeId {
        &self.members[self.owner_index_at(position)].id
    }

    /// The index in [`Ring::members`] of the node that owns `position`: handy
    /// for counting per-node loads in an array.
    #[inline]
    pub fn owner_index_at(&self, position: u64) -> usize {
        match self.packed_at(position) {
            Some((_, word)) => self.packed.owner(word),
            None => self.points()[self.point_at(position)].owner as usize,
        }
    }

    /// The first `r` distinct physical nodes met clockwise from `key`'s
    /// position, the owner first. When `r` exceeds the number of nodes, the list
    /// holds every node once. See [`PreferenceList`] for its cost.
    pub fn preference_list(&self, key: &[u8], r: usize) -> PreferenceList<'_> {
        self.preference_list_at(key_position(key), r)
    }

    /// [`Ring::preference_list`] for a ring position.
    #[inline]
    pub fn preference_list_at(&self, position: u64, r: usize) -> PreferenceList<'_> {
        if r <= 3 {
            if let Some((index, word)) = self.packed_at(position) {
                let nodes = self.packed.nodes(word);
                return PreferenceList::from_nodes(self, index, nodes, r);
            }
        }
        PreferenceList::collect(self, self.point_at(position), r)
    }

    /// The index of the first point at or after `position` and its packed
    /// word, read from the packed points alone; `None` when they cannot
    /// answer exactly (no packed points, a crowded bucket, or a point whose
    /// kept bits equal the position's), and the full points must.
    #[inline]
    fn packed_at(&self, position: u64) -> Option<(usize, u64)> {
        let words = &self.packed.words;
        if words.is_empty() {
            return None;
        }
        let bucket = (position >> self.bucket_shift) as usize;
        let start = self.buckets[bucket] as usize;
        let end = self.buckets[bucket + 1] as usize;
        if end - start > SCAN_WIDTH {
            return None;
        }
        // As in `point_at`: count, without an early exit, the points before
        // `position` among SCAN_WIDTH from the bucket's start. Comparing the
        // kept top bits is exact unless they are equal, which for random
        // positions almost never happens (then the full points decide).
        let shift = self.packed.node_bits * 3;
        let kept = position >> shift;
        let mut index = start;
        let mut tie = false;
        for &word in &words[start..start + SCAN_WIDTH] {
            index += usize::from(word >> shift < kept);
            tie |= word >> shift == kept;
        }
        if tie {
            return None;
        }
        if index == self.points().len() {
            index = 0;
        }
        Some((index, words[index]))
    }

    /// The points, sorted by position (then owner).
    #[inline]
    fn points(&self) -> &[Point] {
        &self.padded[..self.padded.len() - SCAN_WIDTH]
    }

    /// The index of the first point at or after `position`, wrapping to 0.
    #[inline]
    fn point_at(&self, position: u64) -> usize {
        // `bucket_shift` ≥ 40 (at most 2^24 buckets), so the bucket fits usize.
        let bucket = (position >> self.bucket_shift) as usize;
        let start = self.buckets[bucket] as usize;
        let end = self.buckets[bucket + 1] as usize;
        let mut index = start;
        if end - start <= SCAN_WIDTH {
            // The usual case. Count the points before `position` among a fixed
            // SCAN_WIDTH from the bucket's start: points past the bucket lie
            // after `position` (later buckets, or sentinels) and count 0. A
            // fixed count with no early exit leaves the CPU no branch to
            // mispredict, which matters more than the few extra compares.
            for point in &self.padded[start..start + SCAN_WIDTH] {
                index += usize::from(point.position < position);
            }
        } else {
            // A crowded bucket keeps the worst case at O(log points).
            index += self.padded[start..end].partition_point(|p| p.position < position);
        }
        if index == self.points().len() {
            0
        } else {
            index
        }
    }

    fn member_index(&self, id: &str) -> Option<usize> {
        self.members
            .binary_search_by(|member| member.id.as_str().cmp(id))
            .ok()
    }

    fn unknown(&self, id: &str) -> RingError {
        RingError::UnknownNode {
            id: id.into(),
            epoch: self.epoch,
        }
    }

    // ---- changes: each returns a new ring at epoch + 1 ----

    /// A ring with one more node, at the next epoch.
    pub fn with_node(&self, id: impl Into<NodeId>, weight: u32) -> Result<Ring, RingError> {
        let id = id.into();
        if self.contains(id.as_str()) {
            return Err(RingError::DuplicateNode { id });
        }
        let mut members = self.members.clone();
        members.push(Member { id, weight });
        Ring::from_members(self.next_epoch(), self.vnodes, members)
    }

    /// A ring without node `id`, at the next epoch. Only the keys `id` owned move.
    pub fn without_node(&self, id: &str) -> Result<Ring, RingError> {
        let index = self.member_index(id).ok_or_else(|| self.unknown(id))?;
        if self.members.len() == 1 {
            return Err(RingError::LastNode { id: id.into() });
        }
        let mut members = self.members.clone();
        members.remove(index);
        Ring::from_members(self.next_epoch(), self.vnodes, members)
    }

    /// A ring in which node `id` has weight `weight`, at the next epoch. A node
    /// keeps its first `vnodes × min(old, new)` points, so only the difference
    /// moves.
    pub fn reweighted(&self, id: &str, weight: u32) -> Result<Ring, RingError> {
        let index = self.member_index(id).ok_or_else(|| self.unknown(id))?;
        let mut members = self.members.clone();
        members[index].weight = weight;
        Ring::from_members(self.next_epoch(), self.vnodes, members)
    }

    fn next_epoch(&self) -> u64 {
        self.epoch.saturating_add(1)
    }
}

/// How many points `member` owns, checking the weight and the 32-bit index.
fn points_of(member: &Member, vnodes: u32) -> Result<u32, RingError> {
    if member.weight == 0 {
        return Err(RingError::ZeroWeight {
            id: member.id.clone(),
        });
    }
    vnodes
        .checked_mul(member.weight)
        .ok_or_else(|| RingError::TooManyPoints {
            id: member.id.clone(),
            vnodes,
            weight: member.weight,
        })
}

/// Buckets of up to this many points are scanned with a fixed number of
/// compares; larger ones (rare: about 0.4% of buckets hold more than 4 when
/// there is one point per bucket on average) are binary-searched.
const SCAN_WIDTH: usize = 4;

/// One point of the ring: where it sits, which member (an index into
/// `Ring::members`) owns it, and the next two distinct members clockwise after
/// that owner — the rest of a preference list of 3 starting here. Kept
/// together so a lookup reads one cache line; `successors` fills what would
/// otherwise be padding, so the point stays 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Point {
    position: u64,
    owner: u32,
    successors: [u16; 2],
}

/// No member: a `successors` entry of a ring with fewer than 3 nodes.
const NO_NODE: u16 = u16::MAX;

/// The points packed one per `u64`, followed by `SCAN_WIDTH` sentinels
/// (`u64::MAX`). A word holds, from the top: the point's position with its
/// low `3 × node_bits` bits cleared, then its owner and its two successors
/// in `node_bits` each (all ones: no node). `node_bits` is the fewest bits
/// that hold every member index and one value more, at most 16.
#[derive(Clone, Debug, Default)]
struct Packed {
    words: Vec<u64>,
    node_bits: u32,
}

impl Packed {
    /// Packs sorted `points` with their successors filled in, for a ring of
    /// `members` (fewer than `NO_NODE`) nodes.
    fn new(points: &[Point], members: usize) -> Packed {
        let node_bits = usize::BITS - members.leading_zeros();
        let none = (1u64 << node_bits) - 1;
        let node = |index: u16| {
            if index == NO_NODE {
                none
            } else {
                u64::from(index)
            }
        };
        let low = 3 * node_bits;
        let mut words = Vec::with_capacity(points.len() + SCAN_WIDTH);
        words.extend(points.iter().map(|point| {
            // The caller checked that member indices fit u16.
            let owner = u64::from(point.owner);
            let [first, second] = point.successors;
            (point.position >> low << low)
                | owner << (2 * node_bits)
                | node(first) << node_bits
                | node(second)
        }));
        words.extend([u64::MAX; SCAN_WIDTH]);
        Packed { words, node_bits }
    }

    /// The owner packed in `word`.
    #[inline]
    fn owner(&self, word: u64) -> usize {
        let mask = (1u64 << self.node_bits) - 1;
        ((word >> (2 * self.node_bits)) & mask) as usize
    }

    /// The owner and the two successors packed in `word` (`NO_NODE`: none).
    #[inline]
    fn nodes(&self, word: u64) -> [u32; 3] {
        let bits = self.node_bits;
        let mask = (1u64 << bits) - 1;
        let node = |value: u64| {
            if value == mask {
                u32::from(NO_NODE)
            } else {
                value as u32
            }
        };
        [
            node((word >> (2 * bits)) & mask),
            node((word >> bits) & mask),
            node(word & mask),
        ]
    }
}

/// Fills in each point's `successors` from the sorted `points` of a ring of
/// `members` nodes. Each point walks clockwise to its next distinct owners:
/// a few steps when there are many vnodes, one lap at most.
fn fill_successors(points: &mut [Point], members: usize) {
    let wanted = members.min(3);
    let successors: Vec<[u16; 2]> = (0..points.len())
        .map(|start| {
            let mut taken = [0u32; 3];
            let found = preference::distinct_owners(points, start, &mut taken[..wanted]);
            // The caller checked that member indices fit u16.
            let successor = |i: usize| if i < found { taken[i] as u16 } else { NO_NODE };
            [successor(1), successor(2)]
        })
        .collect();
    for (point, successors) in points.iter_mut().zip(successors) {
        point.successors = successors;
    }
}

/// The bucket index of sorted `points`: about one bucket per point, a power
/// of two between 2 and 2^24 buckets, each bucket covering the positions that
/// share their top bits.
fn bucket_index(points: &[Point]) -> (Vec<u32>, u32) {
    let bits = points
        .len()
        .next_power_of_two()
        .trailing_zeros()
        .clamp(1, 24);
    let shift = 64 - bits;
    let mut buckets = Vec::with_capacity((1 << bits) + 1);
    let mut index = 0usize;
    for bucket in 0..1u64 << bits {
        let bucket_start = bucket << shift;
        while index < points.len() && points[index].position < bucket_start {
            index += 1;
        }
        // The caller checked that the number of points fits u32.
        buckets.push(index as u32);
    }
    buckets.push(points.len() as u32);
    (buckets, shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_nodes() -> Ring {
        Ring::builder(50)
            .node("a", 1)
            .node("b", 1)
            .node("c", 2)
            .build()
            .expect("a valid ring")
    }

    #[test]
    fn owner_agrees_with_a_plain_binary_search() {
        let ring = three_nodes();
        for key in 0u32..20_000 {
            let position = key_position(&key.to_le_bytes());
            let index = ring.points().partition_point(|p| p.position < position);
            let expected = ring.points()[index % ring.points().len()].owner;
            assert_eq!(ring.point_at(position), index % ring.points().len());
            assert_eq!(ring.owner_at(position), &ring.members[expected as usize].id);
        }
        // The extremes of the circle: 0 and u64::MAX wrap to the first point
        // unless a point sits exactly there.
        assert_eq!(ring.point_at(u64::MAX), 0);
        assert_eq!(ring.point_at(0), 0);
        assert_eq!(ring.point_at(ring.points()[5].position), 5);
    }

    #[test]
    fn packed_lookups_agree_with_the_full_points() {
        let ring = (0..20)
            .fold(Ring::builder(40), |builder, node| {
                builder.node(format!("node-{node}"), 1 + node % 3)
            })
            .build()
            .unwrap();
        assert_eq!(ring.packed.node_bits, 5);
        let exact = |position: u64| {
            let index = ring.points().partition_point(|p| p.position < position);
            index % ring.points().len()
        };
        let points = ring.points().iter().map(|p| p.position);
        let near_points = points.flat_map(|p| [p.wrapping_sub(1), p, p.wrapping_add(1)]);
        let hashed = (0u32..20_000).map(|key| key_position(&key.to_le_bytes()));
        for position in hashed.chain(near_points).chain([0, u64::MAX]) {
            let index = exact(position);
            let owner = ring.points()[index].owner as usize;
            assert_eq!(ring.owner_index_at(position), owner, "{position:#x}");
            for r in 0..=3 {
                let packed = ring.preference_list_at(position, r);
                let walked = PreferenceList::collect(&ring, index, r);
                assert_eq!(packed.to_vec(), walked.to_vec(), "{position:#x}, r {r}");
                assert_eq!(packed.owner(), walked.owner());
            }
        }
    }

    #[test]
    fn a_crowded_bucket_is_binary_searched_correctly() {
        // Twenty points in the first bucket, one far away: the first bucket
        // holds more than SCAN_WIDTH points and takes the binary search.
        let point = |position: u64, owner: u32| Point {
            position,
            owner,
            successors: [NO_NODE; 2],
        };
        let mut points: Vec<Point> = (1..=20)
            .map(|position| point(position * 10, (position % 2) as u32))
            .collect();
        points.push(point(u64::MAX / 2, 0));
        let (buckets, bucket_shift) = bucket_index(&points);
        assert!(buckets[1] - buckets[0] > SCAN_WIDTH as u32);
        let real = points.len();
        points.extend([point(u64::MAX, 0); SCAN_WIDTH]);
        let ring = Ring {
            epoch: 0,
            vnodes: 1,
            members: vec![
                Member {
                    id: "even".into(),
                    weight: 1,
                },
                Member {
                    id: "odd".into(),
                    weight: 1,
                },
            ],
            padded: points,
            successors_known: false,
            packed: Packed::default(),
            buckets,
            bucket_shift,
        };
        for position in (0..=220).chain([u64::MAX / 2, u64::MAX / 2 + 1, u64::MAX]) {
            let expected = ring.points().partition_point(|p| p.position < position) % real;
            assert_eq!(ring.point_at(position), expected, "position {position}");
        }
    }

    #[test]
    fn points_follow_weights() {
        let ring = three_nodes();
        assert_eq!(ring.point_count(), 200);
        let of_c = ring
            .points()
            .iter()
            .filter(|point| point.owner == 2)
            .count();
        assert_eq!(of_c, 100);
        assert!(
            format!("{ring:?}").ends_with("points: 200, .. }"),
            "{ring:?}"
        );
    }

    #[test]
    fn errors_say_what_was_wrong() {
        assert_eq!(Ring::builder(10).build(), Err(RingError::Empty));
        assert_eq!(
            Ring::builder(0).node("a", 1).build(),
            Err(RingError::ZeroVnodes)
        );
        assert_eq!(
            Ring::builder(10).node("a", 1).node("a", 2).build(),
            Err(RingError::DuplicateNode { id: "a".into() })
        );
        assert_eq!(
            Ring::builder(10).node("a", 0).build(),
            Err(RingError::ZeroWeight { id: "a".into() })
        );
        let too_many = Ring::builder(1 << 20).node("a", 1 << 12).build();
        assert!(matches!(too_many, Err(RingError::TooManyPoints { .. })));
        let ring = three_nodes();
        let err = ring.without_node("z").unwrap_err();
        assert_eq!(
            err.to_string(),
            "node `z` is not on the ring (epoch 0); check the id against `Ring::members`"
        );
        assert!(matches!(
            ring.with_node("a", 1),
            Err(RingError::DuplicateNode { .. })
        ));
        assert!(matches!(
            ring.reweighted("a", 0),
            Err(RingError::ZeroWeight { .. })
        ));
        let single = Ring::builder(3).node("only", 1).build().unwrap();
        assert_eq!(
            single.without_node("only"),
            Err(RingError::LastNode { id: "only".into() })
        );
    }

    #[test]
    fn changes_advance_the_epoch_and_keep_the_original() {
        let ring = three_nodes();
        let grown = ring.with_node("d", 3).unwrap();
        let shrunk = grown.without_node("a").unwrap();
        let heavier = shrunk.reweighted("b", 4).unwrap();
        assert_eq!([grown.epoch(), shrunk.epoch(), heavier.epoch()], [1, 2, 3]);
        assert_eq!(ring.node_count(), 3);
        assert_eq!(heavier.weight("b"), Ok(4));
        assert_eq!(heavier.point_count(), 50 * (4 + 2 + 3));
        assert!(!heavier.contains("a"));
    }

    #[test]
    fn a_single_point_owns_the_whole_circle() {
        let ring = Ring::builder(1).node("solo", 1).build().unwrap();
        for position in [0, 1, u64::MAX / 2, u64::MAX] {
            assert_eq!(ring.owner_at(position).as_str(), "solo");
        }
    }
}
