//! A cabin's seats held or sold as its row keeps them (one bit per seat of its layout), and the server's
//! choice of seats for a party. The cabin's row is locked by every transaction that takes or frees a seat,
//! so a hold reads the cabin's taken seats with that lock as one value of at most
//! `MAX_ROW * MAX_SEATS_PER_ROW / 8` bytes, however full the cabin or the database.

use super::flight::{CabinLayout, SeatNumber};

/// The seats of one cabin held or sold. Bit `i` stands for the `i`-th seat of [`CabinLayout::seats`]
/// (front to back, left to right) and is bit `i % 8` of byte `i / 8`, least significant first: the order
/// in which PostgreSQL's `get_bit` numbers a bytea's bits, so an operator can read it in `psql`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenSeats {
    layout: CabinLayout,
    bits: Vec<u8>,
}

impl TakenSeats {
    /// Every seat of `layout` free.
    pub fn none(layout: CabinLayout) -> Self {
        let bytes = (layout.seat_count() as usize).div_ceil(8);
        Self { layout, bits: vec![0; bytes] }
    }

    /// The bits a cabin stored. Bytes missing at the end are free seats: a cabin stores none until a seat
    /// of it is first taken.
    pub fn from_bits(layout: CabinLayout, stored: &[u8]) -> Result<Self, String> {
        let mut taken = Self::none(layout);
        if stored.len() > taken.bits.len() {
            return Err(format!("{} bytes of taken seats for a cabin of {}", stored.len(), taken.layout.seat_count()));
        }
        taken.bits[..stored.len()].copy_from_slice(stored);
        let seats = taken.layout.seat_count() as usize;
        if (seats..taken.bits.len() * 8).any(|i| taken.bit(i)) {
            return Err(format!("a seat beyond the {seats} seats of the cabin is taken"));
        }
        Ok(taken)
    }

    /// `seats` taken in `layout`; `Err` names a seat the layout does not have.
    pub fn from_seats(layout: CabinLayout, seats: impl IntoIterator<Item = SeatNumber>) -> Result<Self, String> {
        let mut taken = Self::none(layout);
        for seat in seats {
            if !taken.take(seat) && !taken.contains(seat) {
                return Err(format!("{seat} is not a seat of the cabin"));
            }
        }
        Ok(taken)
    }

    /// The bits to store: one per seat, rounded up to whole bytes.
    pub fn bits(&self) -> &[u8] {
        &self.bits
    }

    pub fn layout(&self) -> &CabinLayout {
        &self.layout
    }

    pub fn contains(&self, seat: SeatNumber) -> bool {
        self.index(seat).is_some_and(|i| self.bit(i))
    }

    /// Marks `seat` taken; `false` when it was taken already or is not a seat of the cabin.
    pub fn take(&mut self, seat: SeatNumber) -> bool {
        self.set(seat, true)
    }

    /// Marks `seat` free; `false` when it was free already or is not a seat of the cabin.
    pub fn free(&mut self, seat: SeatNumber) -> bool {
        self.set(seat, false)
    }

    /// The taken seats, front to back.
    pub fn iter(&self) -> impl Iterator<Item = SeatNumber> + '_ {
        self.layout.seats().enumerate().filter(|&(i, _)| self.bit(i)).map(|(_, seat)| seat)
    }

    fn set(&mut self, seat: SeatNumber, taken: bool) -> bool {
        let Some(i) = self.index(seat) else { return false };
        if self.bit(i) == taken {
            return false;
        }
        self.bits[i / 8] ^= 1 << (i % 8);
        true
    }

    fn bit(&self, i: usize) -> bool {
        self.bits[i / 8] & (1 << (i % 8)) != 0
    }

    fn index(&self, seat: SeatNumber) -> Option<usize> {
        if !self.layout.contains(seat) {
            return None;
        }
        let letter = self.layout.letters.find(seat.letter)?;
        Some((seat.row - self.layout.first_row) as usize * self.layout.letters.len() + letter)
    }
}

/// Seats for a party the server places: the first row with enough free seats side by side (letters in
/// order), otherwise the first free seats front to back. `None` when the cabin has too few free seats.
pub fn choose_seats(taken: &TakenSeats, count: usize) -> Option<Vec<SeatNumber>> {
    let layout = taken.layout();
    let letters: Vec<char> = layout.letters.chars().collect();
    if count <= letters.len() {
        for row in layout.first_row..=layout.last_row() {
            let mut run = Vec::with_capacity(count);
            for &letter in &letters {
                let seat = SeatNumber { row, letter };
                if taken.contains(seat) {
                    run.clear();
                } else {
                    run.push(seat);
                    if run.len() == count {
                        return Some(run);
                    }
                }
            }
        }
    }
    let free: Vec<SeatNumber> = layout.seats().filter(|&seat| !taken.contains(seat)).take(count).collect();
    (free.len() == count).then_some(free)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(s: &str) -> SeatNumber {
        SeatNumber::parse(s).unwrap()
    }

    fn names(seats: Option<Vec<SeatNumber>>) -> Option<Vec<String>> {
        seats.map(|s| s.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn seats_are_numbered_front_to_back_least_significant_bit_first() {
        let layout = CabinLayout::new(10, 2, "ABC").unwrap();
        let mut taken = TakenSeats::none(layout.clone());
        assert_eq!(taken.bits(), [0]);
        assert!(taken.take(seat("10A")) && taken.take(seat("10C")) && taken.take(seat("11C")));
        assert_eq!(taken.bits(), [0b0010_0101]);
        assert!(!taken.take(seat("10A")), "taken already");
        assert!(!taken.take(seat("12A")) && !taken.take(seat("10D")), "not seats of the cabin");
        assert!(taken.free(seat("10C")) && !taken.free(seat("10C")));
        assert_eq!(taken.iter().map(|s| s.to_string()).collect::<Vec<_>>(), ["10A", "11C"]);
        assert!(taken.contains(seat("11C")) && !taken.contains(seat("11B")) && !taken.contains(seat("9A")));
        let nine = CabinLayout::new(1, 3, "ABC").unwrap();
        assert_eq!(TakenSeats::none(nine).bits().len(), 2, "nine seats round up to two bytes");
    }

    #[test]
    fn stored_bits_are_read_back_and_checked_against_the_layout() {
        let layout = CabinLayout::new(1, 3, "ABC").unwrap();
        let taken = TakenSeats::from_seats(layout.clone(), [seat("1B"), seat("3C")]).unwrap();
        assert_eq!(TakenSeats::from_bits(layout.clone(), taken.bits()).unwrap(), taken);
        assert_eq!(TakenSeats::from_bits(layout.clone(), &[]).unwrap(), TakenSeats::none(layout.clone()));
        assert!(TakenSeats::from_bits(layout.clone(), &[0, 0, 0]).unwrap_err().contains("3 bytes"));
        assert!(TakenSeats::from_bits(layout.clone(), &[0, 0b10]).unwrap_err().contains("beyond"));
        assert!(TakenSeats::from_seats(layout, [seat("4A")]).unwrap_err().contains("4A"));
    }

    #[test]
    fn parties_sit_together_when_a_row_allows() {
        let layout = CabinLayout::new(1, 3, "ABC").unwrap();
        assert_eq!(names(choose_seats(&TakenSeats::none(layout.clone()), 2)), Some(vec!["1A".into(), "1B".into()]));
        let taken = TakenSeats::from_seats(layout, [seat("1B"), seat("2A")]).unwrap();
        assert_eq!(names(choose_seats(&taken, 2)), Some(vec!["2B".into(), "2C".into()]));
        assert_eq!(names(choose_seats(&taken, 4)), Some(vec!["1A".into(), "1C".into(), "2B".into(), "2C".into()]));
        assert_eq!(choose_seats(&taken, 8), None);
        assert_eq!(choose_seats(&taken, 7).map(|s| s.len()), Some(7));
    }
}
