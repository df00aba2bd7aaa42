//! The fault-injecting mock provider.
use std::net::SocketAddr;
pub struct MockHandle {
    pub addr: SocketAddr,
}
pub async fn start(listen: SocketAddr) -> std::io::Result<MockHandle> {
    Ok(MockHandle { addr: listen })
}
pub async fn run(_listen: SocketAddr) -> std::io::Result<()> {
    Ok(())
}
