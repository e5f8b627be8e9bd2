//! The loopback guard: chaos tooling never touches a real network.

use std::net::{IpAddr, SocketAddr};

use crate::ChaosError;

/// Accepts only IPv4 loopback (127.0.0.0/8). IPv6 `::1` is refused too: the rule is written
/// as "127.0.0.x" so that one grep over a test tells which addresses it can reach.
pub(crate) fn require_loopback(role: &'static str, addr: SocketAddr) -> Result<(), ChaosError> {
    match addr.ip() {
        IpAddr::V4(v4) if v4.is_loopback() => Ok(()),
        _ => Err(ChaosError::NotLoopback { role, addr }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_127_slash_8_passes() {
        for ok in ["127.0.0.1:0", "127.0.0.2:80", "127.255.255.254:9"] {
            assert!(
                require_loopback("listen", ok.parse().unwrap()).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "0.0.0.0:0",
            "10.0.0.1:80",
            "192.168.1.1:1",
            "[::1]:80",
            "[::]:0",
        ] {
            let err = require_loopback("target", bad.parse().unwrap()).unwrap_err();
            assert!(err.to_string().contains("loopback"), "{bad}: {err}");
        }
    }
}
