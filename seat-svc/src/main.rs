//! seat-svc's binary; everything else is the library.
fn main() -> anyhow::Result<()> {
    nats::runtime::main::<seat_svc::SeatSvc>()
}
