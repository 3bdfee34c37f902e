//! `[reduce.game]`: the release game. Two to four players each choose a value of
//! one grid axis (their strategies) and maximize one output (their payoff). For
//! every world (a combination of the other axes' values) the game is the table of
//! payoffs over the world's profiles; from it:
//!
//! - its **pure Nash equilibria**: the profiles where no player gains strictly by
//!   changing its own value alone (ties are equilibria);
//! - its **leader-follower outcome**: the first player commits to a value; the
//!   others then play the first pure equilibrium, in profile order, of the game
//!   that remains; the leader takes the commitment whose outcome pays it most
//!   (ties to the first commitment). A commitment whose remaining game has no pure
//!   equilibrium is not available; a world where none is has no leader outcome.
//!
//! Profiles are numbered in mixed radix over the players' values in axis order,
//! the first player slowest and the last fastest (as the grid numbers rows). A
//! payoff that is not a number (an empty cell, NaN) is lower than every number,
//! so a player never moves to it and always moves away from it when it can.
//! `shaders/reduce.wgsl`'s `game` does the same in f32 on the device.

use super::ReducedOutput;
use super::stats::MeanAcc;

/// Players a game may have.
pub const MAX_PLAYERS: usize = 4;

/// Profiles a world may have: its payoff table is solved by one device
/// invocation, and its rows are solved together in one reduction block.
pub const MAX_PROFILES: usize = 1 << 16;

/// One player.
#[derive(Clone, Debug)]
pub struct Player {
    /// Its strategy axis's index in the plan (a grid axis).
    pub axis: usize,
    pub path: String,
    /// Its strategies: the axis's values, in axis order.
    pub values: Vec<f64>,
    /// The output it maximizes.
    pub payoff: ReducedOutput,
    /// Index of its reference value in `values`.
    pub reference: usize,
}

/// A validated `[reduce.game]`.
#[derive(Clone, Debug)]
pub struct Game {
    pub players: Vec<Player>,
}

impl Game {
    /// Each player's number of strategies.
    pub fn sizes(&self) -> Vec<usize> {
        self.players.iter().map(|p| p.values.len()).collect()
    }

    /// Profiles per world.
    pub fn profiles(&self) -> usize {
        self.players.iter().map(|p| p.values.len()).product()
    }

    /// The profile of every player's reference value.
    pub fn reference_profile(&self) -> usize {
        self.players.iter().fold(0, |q, p| q * p.values.len() + p.reference)
    }

    /// Each player's strategy index in profile `q`.
    pub fn strategies(&self, q: usize) -> Vec<usize> {
        let mut s = vec![0; self.players.len()];
        let mut rest = q;
        for (i, p) in self.players.iter().enumerate().rev() {
            s[i] = rest % p.values.len();
            rest /= p.values.len();
        }
        s
    }
}

/// What one world's game gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Solution {
    /// Its pure Nash equilibria, in profile order.
    pub nash: Vec<usize>,
    /// Its leader-follower outcome.
    pub leader: Option<usize>,
}

/// Whether payoff `a` is strictly better than `b` (what is not a number is worst).
#[inline]
pub fn gains(a: f64, b: f64) -> bool {
    !a.is_nan() && (b.is_nan() || a > b)
}

/// Solves a world's game: `sizes` are the players' strategy counts, `pay(q, i)`
/// player i's payoff in profile q.
pub fn solve(sizes: &[usize], pay: impl Fn(usize, usize) -> f64) -> Solution {
    let profiles: usize = sizes.iter().product();
    let mut strides = vec![1; sizes.len()];
    for i in (0..sizes.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * sizes[i + 1];
    }
    // Whether no player from `from` on gains by deviating alone from profile q.
    let stable = |q: usize, from: usize| {
        (from..sizes.len()).all(|i| {
            let (n, s) = (sizes[i], strides[i]);
            let own = pay(q, i);
            let base = q - (q / s % n) * s;
            (0..n).all(|a| !gains(pay(base + a * s, i), own))
        })
    };
    let nash = (0..profiles).filter(|&q| stable(q, 0)).collect();
    // The leader (player 0) commits to c; the rest play the first equilibrium of
    // the game that remains, whose profiles are c's block, in profile order.
    let mut leader: Option<(usize, f64)> = None;
    if let Some(&n0) = sizes.first() {
        let block = profiles / n0.max(1);
        for c in 0..n0 {
            let Some(q) = (c * block..(c + 1) * block).find(|&q| stable(q, 1)) else { continue };
            let v = pay(q, 0);
            if leader.is_none_or(|(_, best)| gains(v, best)) {
                leader = Some((q, v));
            }
        }
    }
    Solution { nash, leader: leader.map(|(q, _)| q) }
}

/// The game's state in one group.
#[derive(Clone, Debug, PartialEq)]
pub struct GameState {
    pub worlds: u64,
    /// Worlds with no, one, and several pure equilibria.
    pub counts: [u64; 3],
    /// Per profile: the worlds where it is an equilibrium.
    pub nash: Vec<u64>,
    /// Worlds without a leader outcome.
    pub leader_none: u64,
    /// Per profile: the worlds whose leader outcome it is.
    pub leader: Vec<u64>,
    /// Per reduced output: its values at each world's leader outcome.
    pub at_leader: Vec<MeanAcc>,
    /// Per reduced output: its values at each world's reference profile.
    pub at_ref: Vec<MeanAcc>,
}

impl GameState {
    pub fn new(profiles: usize, outputs: usize) -> GameState {
        GameState {
            worlds: 0,
            counts: [0; 3],
            nash: vec![0; profiles],
            leader_none: 0,
            leader: vec![0; profiles],
            at_leader: vec![MeanAcc::default(); outputs],
            at_ref: vec![MeanAcc::default(); outputs],
        }
    }

    /// Counts one world with equilibria `nash` (profile indices) and leader outcome `leader`.
    pub fn add_world(&mut self, nash: impl Iterator<Item = usize>, leader: Option<usize>) {
        self.worlds += 1;
        let mut n = 0;
        for q in nash {
            self.nash[q] += 1;
            n += 1;
        }
        self.counts[n.min(2)] += 1;
        match leader {
            Some(q) => self.leader[q] += 1,
            None => self.leader_none += 1,
        }
    }

    pub fn merge(&mut self, o: &GameState) {
        self.worlds += o.worlds;
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        for (a, b) in self.nash.iter_mut().zip(&o.nash).chain(self.leader.iter_mut().zip(&o.leader)) {
            *a += b;
        }
        self.leader_none += o.leader_none;
        for (a, b) in self.at_leader.iter_mut().zip(&o.at_leader).chain(self.at_ref.iter_mut().zip(&o.at_ref)) {
            a.merge(b);
        }
    }

    /// `count` as a share of the group's worlds (None without worlds).
    pub fn share(&self, count: u64) -> Option<f64> {
        (self.worlds > 0).then(|| count as f64 / self.worlds as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-player game from its bimatrix: `a[r][c]` to the row player (first),
    /// `b[r][c]` to the column player.
    fn bimatrix<const R: usize, const C: usize>(a: [[f64; C]; R], b: [[f64; C]; R]) -> Solution {
        solve(&[R, C], |q, i| if i == 0 { a[q / C][q % C] } else { b[q / C][q % C] })
    }

    #[test]
    fn prisoners_dilemma_has_one_equilibrium_and_the_leader_cannot_escape_it() {
        // Strategies: 0 cooperate, 1 defect. Defecting dominates.
        let s = bimatrix([[3.0, 0.0], [5.0, 1.0]], [[3.0, 5.0], [0.0, 1.0]]);
        assert_eq!(s.nash, vec![3]);
        assert_eq!(s.leader, Some(3));
    }

    #[test]
    fn matching_pennies_has_none_and_the_leader_moves_to_the_followers_best_reply() {
        let s = bimatrix([[1.0, -1.0], [-1.0, 1.0]], [[-1.0, 1.0], [1.0, -1.0]]);
        assert!(s.nash.is_empty());
        // Whatever the leader commits to, the follower wins: payoffs -1 both, so
        // the first commitment (row 0) and the follower's reply (column 1).
        assert_eq!(s.leader, Some(1));
    }

    #[test]
    fn the_free_rider_game_has_two_mirror_equilibria_and_moving_first_picks_one() {
        // 0 release, 1 never. Whoever releases pays 1, both gain 4 from any release.
        // (release, release): 3,3; (release, never): 3,4; (never, release): 4,3; (never, never): 0,0.
        let s = bimatrix([[3.0, 3.0], [4.0, 0.0]], [[3.0, 4.0], [3.0, 0.0]]);
        assert_eq!(s.nash, vec![1, 2]);
        // The leader never releases and leaves the release to the follower.
        assert_eq!(s.leader, Some(2));
    }

    #[test]
    fn ties_are_equilibria_and_the_first_in_profile_order_is_followed() {
        // Every payoff equal: every profile is an equilibrium; the follower plays
        // the first, and the leader's first commitment wins the tie.
        let s = solve(&[2, 3], |_, _| 1.0);
        assert_eq!(s.nash, (0..6).collect::<Vec<_>>());
        assert_eq!(s.leader, Some(0));
    }

    #[test]
    fn not_a_number_is_worst() {
        // The row player's payoff is NaN in row 0: it moves to row 1 when it can.
        let a = [[f64::NAN, f64::NAN], [-5.0, -7.0]];
        let b = [[0.0, 1.0], [1.0, 0.0]];
        let s = bimatrix(a, b);
        assert_eq!(s.nash, vec![2]);
        assert_eq!(s.leader, Some(2));
        // All NaN: every profile is stable.
        let s = solve(&[2, 2], |_, _| f64::NAN);
        assert_eq!(s.nash, vec![0, 1, 2, 3]);
        assert_eq!(s.leader, Some(0));
    }

    #[test]
    fn a_three_player_leader_skips_commitments_whose_followers_have_no_equilibrium() {
        // Player 0 has two values. Given 0, players 1 and 2 play matching pennies
        // (no pure equilibrium); given 1, a coordination game (two equilibria).
        let pay = |q: usize, i: usize| {
            let (a, b, c) = (q / 4, q / 2 % 2, q % 2);
            match (a, i) {
                (0, 0) => 10.0,
                (0, 1) => {
                    if b == c {
                        1.0
                    } else {
                        -1.0
                    }
                }
                (0, 2) => {
                    if b == c {
                        -1.0
                    } else {
                        1.0
                    }
                }
                (1, 0) => (b + c) as f64,
                (1, _) => {
                    if b == c {
                        2.0
                    } else {
                        0.0
                    }
                }
                _ => unreachable!(),
            }
        };
        let s = solve(&[2, 2, 2], pay);
        // Full game: in a = 0 the followers cycle; in a = 1 player 0 prefers
        // a = 0 (10 > 2), so no profile is stable... except none: check by hand.
        // (1,1,1): player 0 gets 2, deviating to a = 0 gives 10: not stable.
        assert!(s.nash.is_empty());
        // Leader: commitment 0 has no follower equilibrium; commitment 1's first
        // is (1,0,0), profile 4, paying the leader 0.
        assert_eq!(s.leader, Some(4));
        // Nobody can commit to anything with followers in endless cycles.
        let cycle = |q: usize, i: usize| match i {
            0 => 0.0,
            1 => {
                if q / 2 % 2 == q % 2 {
                    1.0
                } else {
                    -1.0
                }
            }
            _ => {
                if q / 2 % 2 == q % 2 {
                    -1.0
                } else {
                    1.0
                }
            }
        };
        assert_eq!(solve(&[2, 2, 2], cycle).leader, None);
    }

    #[test]
    fn state_counts_worlds_by_equilibria() {
        let mut st = GameState::new(4, 1);
        st.add_world([].into_iter(), None);
        st.add_world([2].into_iter(), Some(2));
        st.add_world([1, 2].into_iter(), Some(1));
        assert_eq!(st.counts, [1, 1, 1]);
        assert_eq!(st.nash, vec![0, 1, 2, 0]);
        assert_eq!((st.leader_none, st.leader.clone()), (1, vec![0, 1, 1, 0]));
        assert_eq!(st.share(st.nash[2]), Some(2.0 / 3.0));
    }
}
