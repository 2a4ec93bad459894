//! domain: what a seat of the inventory can be.

contracts::string_enum! {
    /// Where a seat stands.
    pub enum SeatStatus { Available = "available", Held = "held", Sold = "sold" }
}
