//! Which network addresses the server may connect to on its own initiative: identity
//! providers' JWKS today, any other outbound fetch tomorrow.
//!
//! A URL an administrator registers is chosen by someone the server trusts only so far: a
//! realm administrator must not be able to make the server reach its own metadata service
//! (`169.254.169.254`), its database on `127.0.0.1`, or the internal network behind it. So
//! every address the server is about to connect to is classified here, and only public
//! unicast addresses pass (loopback too, when the operator opts in for development).
//!
//! Classification covers the ranges IANA lists as not globally reachable, and looks through
//! IPv6 forms that carry an IPv4 address (`::ffff:127.0.0.1`, `64:ff9b::a00:1`), since a
//! dual-stack socket or a NAT64 gateway delivers those to the embedded IPv4 address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of address an IP address is, as far as outbound requests are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Globally reachable unicast: the only class an outbound request may always use.
    Public,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `0.0.0.0/8` ("this network"), `::`.
    Unspecified,
    /// RFC 1918: `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// RFC 6598 carrier-grade NAT: `100.64/10`.
    SharedAddressSpace,
    /// `169.254/16` (cloud metadata services live here), `fe80::/10`.
    LinkLocal,
    /// `fc00::/7`.
    UniqueLocal,
    /// `fec0::/10`, deprecated but still routed by some networks.
    SiteLocal,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18/15`, `2001:2::/48`.
    Benchmarking,
    /// Everything else set aside for special use: `240/4`, `192.0.0/24`, `192.88.99/24`,
    /// `100::/64`, Teredo `2001::/32`, local-use NAT64 `64:ff9b:1::/48`, and IPv4-compatible
    /// IPv6 addresses (deprecated).
    Reserved,
}

impl AddressClass {
    /// The class in words, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Private => "private",
            AddressClass::SharedAddressSpace => "shared (carrier-grade NAT)",
            AddressClass::LinkLocal => "link-local",
            AddressClass::UniqueLocal => "unique-local",
            AddressClass::SiteLocal => "site-local",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Documentation => "documentation",
            AddressClass::Benchmarking => "benchmarking",
            AddressClass::Reserved => "reserved",
        }
    }
}

/// Classifies `ip`.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    if a == 0 {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private() {
        AddressClass::Private
    } else if a == 100 && (b & 0xc0) == 64 {
        AddressClass::SharedAddressSpace
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if ip.is_documentation() {
        AddressClass::Documentation
    } else if a == 198 && (b & 0xfe) == 18 {
        AddressClass::Benchmarking
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if ip.is_broadcast() {
        AddressClass::Broadcast
    } else if a >= 240 || (a, b, c) == (192, 0, 0) || (a, b, c) == (192, 88, 99) {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    let embedded = || Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32);
    if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if let Some(v4) = ip.to_ipv4_mapped() {
        // ::ffff:a.b.c.d reaches a.b.c.d through a dual-stack socket.
        classify_v4(v4)
    } else if s[..6] == [0; 6] {
        // IPv4-compatible (RFC 4291 §2.5.5.1, deprecated): never a legitimate destination,
        // and classified by what it embeds so that `::127.0.0.1` reads as loopback.
        match classify_v4(embedded()) {
            AddressClass::Public => AddressClass::Reserved,
            class => class,
        }
    } else if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        // RFC 6145 IPv4-translated (`::ffff:0:a.b.c.d`): a stateless translator reaches the
        // embedded IPv4 address.
        classify_v4(embedded())
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // RFC 6052 NAT64: the gateway connects to the embedded IPv4 address.
        classify_v4(embedded())
    } else if s[..3] == [0x64, 0xff9b, 1] {
        AddressClass::Reserved
    } else if s[0] == 0x2002 {
        // RFC 3056 6to4 carries an IPv4 address in bits 16..48.
        classify_v4(Ipv4Addr::from(((s[1] as u32) << 16) | s[2] as u32))
    } else if ip.is_unique_local() {
        AddressClass::UniqueLocal
    } else if ip.is_unicast_link_local() {
        AddressClass::LinkLocal
    } else if (s[0] & 0xffc0) == 0xfec0 {
        AddressClass::SiteLocal
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if (s[0], s[1]) == (0x2001, 0x0db8) || (s[0] == 0x3fff && s[1] < 0x1000) {
        AddressClass::Documentation
    } else if (s[0], s[1], s[2]) == (0x2001, 0x0002, 0) {
        AddressClass::Benchmarking
    } else if s[..4] == [0x100, 0, 0, 0] || (s[0], s[1]) == (0x2001, 0) {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

/// Which classes of address an outbound request may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundPolicy {
    public: bool,
    loopback: bool,
}

impl OutboundPolicy {
    /// Public addresses only: the production setting.
    pub const PUBLIC: OutboundPolicy = OutboundPolicy {
        public: true,
        loopback: false,
    };
    /// Public and loopback addresses: local development with a provider on this machine.
    pub const PUBLIC_AND_LOOPBACK: OutboundPolicy = OutboundPolicy {
        public: true,
        loopback: true,
    };
    /// Loopback only: plain HTTP, which is never allowed to leave the machine.
    pub const LOOPBACK_ONLY: OutboundPolicy = OutboundPolicy {
        public: false,
        loopback: true,
    };

    /// Whether a connection to `ip` is allowed, and if not, why.
    pub fn check(self, ip: IpAddr) -> Result<(), RefusedAddress> {
        let class = classify(ip);
        let allowed = match class {
            AddressClass::Public => self.public,
            AddressClass::Loopback => self.loopback,
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(RefusedAddress { address: ip, class })
        }
    }
}

/// An address an outbound request may not connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusedAddress {
    pub address: IpAddr,
    pub class: AddressClass,
}

impl fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is a {} address", self.address, self.class.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::AddressClass::*;
    use super::*;

    fn check(address: &str, expected: AddressClass) {
        let ip: IpAddr = address.parse().unwrap();
        assert_eq!(classify(ip), expected, "{address}");
    }

    #[test]
    fn classes() {
        let table = [
            // IPv4
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            ("100.63.255.255", Public),
            ("100.128.0.0", Public),
            ("172.15.255.255", Public),
            ("172.32.0.0", Public),
            ("198.17.255.255", Public),
            ("198.20.0.0", Public),
            ("223.255.255.255", Public),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("169.254.169.254", LinkLocal),
            ("192.0.2.1", Documentation),
            ("198.51.100.1", Documentation),
            ("203.0.113.1", Documentation),
            ("198.18.0.1", Benchmarking),
            ("198.19.255.255", Benchmarking),
            ("224.0.0.1", Multicast),
            ("239.255.255.255", Multicast),
            ("255.255.255.255", Broadcast),
            ("240.0.0.1", Reserved),
            ("192.0.0.8", Reserved),
            ("192.88.99.1", Reserved),
            // IPv6
            ("2606:4700::1111", Public),
            ("2a00:1450:4001::200e", Public),
            ("::", Unspecified),
            ("::1", Loopback),
            ("fc00::1", UniqueLocal),
            ("fd12:3456::1", UniqueLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fec0::1", SiteLocal),
            ("ff02::1", Multicast),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("3fff:1000::1", Public),
            ("2001:2::1", Benchmarking),
            ("100::1", Reserved),
            ("2001::1", Reserved),
            ("64:ff9b:1::a00:1", Reserved),
            // IPv6 forms carrying an IPv4 address are what they carry.
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:0:7f00:1", Loopback),
            ("::ffff:0:a9fe:a9fe", LinkLocal),
            ("::ffff:0:808:808", Public),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:0.0.0.0", Unspecified),
            ("::ffff:8.8.8.8", Public),
            ("::127.0.0.1", Loopback),
            ("::10.0.0.1", Private),
            ("::8.8.8.8", Reserved),
            ("64:ff9b::127.0.0.1", Loopback),
            ("64:ff9b::169.254.169.254", LinkLocal),
            ("64:ff9b::192.168.0.1", Private),
            ("64:ff9b::8.8.8.8", Public),
            ("2002:7f00:1::1", Loopback),
            ("2002:a9fe:a9fe::1", LinkLocal),
            ("2002:808:808::1", Public),
        ];
        for (address, expected) in table {
            check(address, expected);
        }
    }

    #[test]
    fn policies() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let public: IpAddr = "8.8.8.8".parse().unwrap();
        let private: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(OutboundPolicy::PUBLIC.check(public).is_ok());
        assert_eq!(
            OutboundPolicy::PUBLIC.check(mapped),
            Err(RefusedAddress {
                address: mapped,
                class: Loopback
            })
        );
        assert!(OutboundPolicy::PUBLIC.check(loopback).is_err());
        assert!(OutboundPolicy::PUBLIC_AND_LOOPBACK.check(loopback).is_ok());
        assert!(OutboundPolicy::PUBLIC_AND_LOOPBACK.check(mapped).is_ok());
        assert!(OutboundPolicy::PUBLIC_AND_LOOPBACK.check(public).is_ok());
        assert!(OutboundPolicy::PUBLIC_AND_LOOPBACK.check(private).is_err());
        assert!(OutboundPolicy::LOOPBACK_ONLY.check(loopback).is_ok());
        assert!(OutboundPolicy::LOOPBACK_ONLY.check(public).is_err());
        assert!(OutboundPolicy::LOOPBACK_ONLY.check(private).is_err());
        assert_eq!(
            OutboundPolicy::PUBLIC
                .check("169.254.169.254".parse().unwrap())
                .unwrap_err()
                .to_string(),
            "169.254.169.254 is a link-local address"
        );
    }
}
