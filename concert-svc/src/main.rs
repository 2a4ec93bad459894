//! concert-svc's binary; everything else is the library.
fn main() -> anyhow::Result<()> {
    nats::runtime::main::<concert_svc::ConcertSvc>()
}
