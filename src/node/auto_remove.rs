//! Automatic removal: with `auto_remove_after` set ([`NodeConfig`]), a
//! member the failure detector has held Dead that long is removed from the
//! ring, exactly as `Request::Remove` (`haft remove`) removes it.
//!
//! While a member of the ring is Dead in this node's detector, a timer
//! ([`NodeTimer::AutoRemove`]) is armed for it; a member seen alive again (a
//! restart comes back with a higher incarnation) has its timer cancelled.
//! When the timer fires and the member is still Dead and still a member,
//! this node begins the ring change of a removal ([`Node::change_ring`]),
//! with no client to answer, if:
//!
//! - it is a member that may begin ring changes: joined, and not moving keys
//!   into its epoch;
//! - no ring change is under way here: none it began itself, none prepared
//!   here;
//! - it is the lowest-id member its detector holds reachable, itself
//!   included, so that the survivors do not all race to remove the member.
//!
//! Whatever it decides, the timer is armed again while the member stays Dead
//! and a member: a removal that aborted (another change won, a vote did not
//! come) is tried again one `auto_remove_after` later, and if the node that
//! should begin it dies too, the next lowest takes over.
//!
//! Safety does not rest on the lowest-id rule: two nodes whose detectors
//! disagree may both begin a removal, but both plan it on the same epoch, and
//! the ring key's read validation lets at most one commit (see the
//! `membership` module). Like any ring change, the removal needs the vote of
//! every other member: while two members are dead, neither can be removed.
//!
//! [`NodeConfig`]: super::NodeConfig

use std::collections::BTreeSet;
use std::time::Duration;

use super::{MemberStatus, Node, NodeEvent, NodeOutput, NodeTimer, RING_KEY, Request, Waiter};
use crate::NodeId;

impl Node {
    /// Arms [`NodeTimer::AutoRemove`] for each member newly Dead, and cancels
    /// it for each member no longer Dead or no longer a member. Runs after
    /// every detector input and every ring installed.
    pub(super) fn watch_dead(&mut self, out: &mut NodeOutput) {
        let Some(after) = self.auto_remove_after else {
            return;
        };
        let dead: BTreeSet<NodeId> = if self.joined && self.placement.is_member(self.me) {
            self.placement
                .members()
                .iter()
                .copied()
                .filter(|member| self.member_status(*member) == MemberStatus::Dead)
                .collect()
        } else {
            BTreeSet::new()
        };
        for member in self.dead_watched.difference(&dead) {
            out.cancel_timer(NodeTimer::AutoRemove(*member));
        }
        let wait = Duration::from_millis(after);
        for member in dead.difference(&self.dead_watched) {
            out.set_timer(NodeTimer::AutoRemove(*member), wait..wait);
        }
        self.dead_watched = dead;
    }

    /// `member` has been Dead for `auto_remove_after`: removes it if this
    /// node is the one to, and watches it again.
    pub(super) fn on_auto_remove_timer(&mut self, member: NodeId, out: &mut NodeOutput) {
        self.dead_watched.remove(&member);
        if self.should_auto_remove(member) {
            out.event(NodeEvent::AutoRemoving { member });
            let waiter = Waiter {
                client: 0,
                id: 0,
                via: None,
                remember: false,
                internal: true,
            };
            self.change_ring(waiter, Request::Remove { node: member.0 }, out);
        }
        self.watch_dead(out);
    }

    /// Whether this node begins the removal of `member` now (see the
    /// [module docs](self)).
    fn should_auto_remove(&self, member: NodeId) -> bool {
        let changing_here = self.participant.read(RING_KEY).is_err()
            || self.waiting.values().any(|waiter| waiter.internal);
        let initiator = self
            .placement
            .members()
            .iter()
            .copied()
            .find(|candidate| self.reachable(*candidate));
        self.joined
            && self.moving.is_none()
            && !changing_here
            && self.placement.is_member(member)
            && self.member_status(member) == MemberStatus::Dead
            // A ring this node joined may keep one copy per key (its own
            // configuration was checked, not the cluster's): removing a node
            // would then lose its keys.
            && self.placement.replicas() >= 2
            && initiator == Some(self.me)
    }
}
