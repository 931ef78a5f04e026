//! A minimal DNS SRV client over UDP (RFC 1035, RFC 2782): one question, one answer, no
//! cache, no TCP fallback, no EDNS. Enough for `dnssrv+` seeds; A/AAAA lookups go through the
//! system resolver (`tokio::net::lookup_host`).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::discovery::SrvRecord;

/// The record type of SRV.
const TYPE_SRV: u16 = 33;
/// The class IN.
const CLASS_IN: u16 = 1;
/// The largest UDP answer read (without EDNS, servers send at most 512 bytes).
const MAX_ANSWER: usize = 4096;
/// Compression pointers followed at most while reading one name (a loop guard).
const MAX_POINTERS: usize = 32;

/// The first `nameserver` of `/etc/resolv.conf`, on port 53.
pub(super) fn system_nameserver() -> io::Result<SocketAddr> {
    let conf = std::fs::read_to_string("/etc/resolv.conf")?;
    nameserver_of(&conf)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no nameserver in /etc/resolv.conf"))
}

/// The first `nameserver` line of a `resolv.conf`.
fn nameserver_of(conf: &str) -> Option<SocketAddr> {
    conf.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            return None;
        }
        let ip: std::net::IpAddr = words.next()?.split('%').next()?.parse().ok()?;
        Some(SocketAddr::new(ip, 53))
    })
}

/// Asks `server` for the SRV records of `name`, waiting at most `timeout`.
pub(super) async fn query_srv(
    server: SocketAddr,
    name: &str,
    timeout: Duration,
) -> io::Result<Vec<SrvRecord>> {
    let bind: SocketAddr = if server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(server).await?;
    let id = query_id(name);
    socket.send(&encode_query(id, name)?).await?;
    let mut buf = vec![0; MAX_ANSWER];
    tokio::time::timeout(timeout, async {
        loop {
            let n = socket.recv(&mut buf).await?;
            // An answer to another question (a late one, a spoof) is skipped.
            if let Some(records) = decode_answer(id, &buf[..n])? {
                return Ok(records);
            }
        }
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "DNS server did not answer"))?
}

/// A query id that differs between names and calls.
fn query_id(name: &str) -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write(name.as_bytes());
    (hasher.finish() & 0xffff) as u16
}

fn invalid(reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.to_string())
}

/// A recursive query for the SRV records of `name`.
pub(super) fn encode_query(id: u16, name: &str) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(18 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    out.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    out.extend_from_slice(&[0; 6]); // AN, NS, AR counts
    for label in name.trim_end_matches('.').split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|&l| (1..=63).contains(&l))
            .ok_or_else(|| invalid("bad DNS name label"))?;
        out.push(len);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&TYPE_SRV.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

/// The SRV records of an answer to query `id` (`None` if it answers another query).
pub(super) fn decode_answer(id: u16, msg: &[u8]) -> io::Result<Option<Vec<SrvRecord>>> {
    let mut r = Reader { msg, pos: 0 };
    if r.u16()? != id {
        return Ok(None);
    }
    let flags = r.u16()?;
    if flags & 0x8000 == 0 {
        return Ok(None); // a query, not an answer
    }
    match flags & 0x000f {
        0 => {}
        3 => return Err(io::Error::new(io::ErrorKind::NotFound, "no such DNS name")),
        code => return Err(invalid(&format!("DNS server answered with code {code}"))),
    }
    if flags & 0x0200 != 0 {
        return Err(invalid(
            "DNS answer truncated (TCP fallback is not supported)",
        ));
    }
    let questions = r.u16()?;
    let answers = r.u16()?;
    r.skip(4)?;
    for _ in 0..questions {
        r.name()?;
        r.skip(4)?;
    }
    let mut records = Vec::new();
    for _ in 0..answers {
        r.name()?;
        let (kind, class) = (r.u16()?, r.u16()?);
        r.skip(4)?; // TTL
        let len = usize::from(r.u16()?);
        let end = r.pos + len;
        if end > msg.len() {
            return Err(invalid("DNS record past the end"));
        }
        if kind == TYPE_SRV && class == CLASS_IN {
            r.skip(4)?; // priority, weight
            let port = r.u16()?;
            let target = r.name()?;
            records.push(SrvRecord { target, port });
        }
        r.pos = end;
    }
    Ok(Some(records))
}

/// A cursor over a DNS message.
struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn skip(&mut self, n: usize) -> io::Result<()> {
        if self.pos + n > self.msg.len() {
            return Err(invalid("DNS message too short"));
        }
        self.pos += n;
        Ok(())
    }

    fn u8_at(&self, at: usize) -> io::Result<u8> {
        self.msg
            .get(at)
            .copied()
            .ok_or_else(|| invalid("DNS message too short"))
    }

    fn u16(&mut self) -> io::Result<u16> {
        let value = u16::from_be_bytes([self.u8_at(self.pos)?, self.u8_at(self.pos + 1)?]);
        self.pos += 2;
        Ok(value)
    }

    /// A name, following compression pointers; the cursor moves past its first part.
    fn name(&mut self) -> io::Result<String> {
        let mut labels: Vec<String> = Vec::new();
        let mut at = self.pos;
        let mut jumped = false;
        let mut pointers = 0;
        loop {
            let len = self.u8_at(at)?;
            match len {
                0 => {
                    if !jumped {
                        self.pos = at + 1;
                    }
                    break;
                }
                l if l & 0xc0 == 0xc0 => {
                    let target = usize::from(u16::from_be_bytes([l & 0x3f, self.u8_at(at + 1)?]));
                    if !jumped {
                        self.pos = at + 2;
                    }
                    jumped = true;
                    pointers += 1;
                    if pointers > MAX_POINTERS {
                        return Err(invalid("DNS name pointer loop"));
                    }
                    at = target;
                }
                l if l & 0xc0 == 0 => {
                    let start = at + 1;
                    let end = start + usize::from(l);
                    let label = self
                        .msg
                        .get(start..end)
                        .ok_or_else(|| invalid("DNS label past the end"))?;
                    labels.push(String::from_utf8_lossy(label).into_owned());
                    at = end;
                }
                _ => return Err(invalid("bad DNS label")),
            }
        }
        Ok(labels.join("."))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An answer to `query` with one SRV record per `(port, target)`, each target written
    /// once in full and the owner names as pointers to the question (as servers do).
    pub(in crate::driver) fn answer(query: &[u8], records: &[(u16, &str)]) -> Vec<u8> {
        let mut out = query.to_vec();
        out[2] = 0x81; // QR, RD
        out[3] = 0x80; // RA
        out[6..8].copy_from_slice(&u16::try_from(records.len()).unwrap().to_be_bytes());
        for &(port, target) in records {
            out.extend_from_slice(&[0xc0, 12]); // the question's name
            out.extend_from_slice(&TYPE_SRV.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&30u32.to_be_bytes());
            let mut rdata = vec![0, 10, 0, 5];
            rdata.extend_from_slice(&port.to_be_bytes());
            for label in target.split('.').filter(|l| !l.is_empty()) {
                rdata.push(u8::try_from(label.len()).unwrap());
                rdata.extend_from_slice(label.as_bytes());
            }
            rdata.push(0);
            out.extend_from_slice(&u16::try_from(rdata.len()).unwrap().to_be_bytes());
            out.extend_from_slice(&rdata);
        }
        out
    }

    #[test]
    fn a_query_names_the_service_and_asks_for_srv_in_class_in() {
        let query = encode_query(7, "_gossip._tcp.svc.local").unwrap();
        assert_eq!(&query[..2], &[0, 7]);
        assert_eq!(&query[12..20], b"\x07_gossip");
        assert_eq!(&query[query.len() - 4..], &[0, 33, 0, 1]);
        assert!(encode_query(1, "a..b").is_err(), "empty labels are refused");
    }

    #[test]
    fn an_answer_yields_every_srv_target_and_port() {
        let query = encode_query(9, "_gossip._tcp.svc").unwrap();
        let msg = answer(&query, &[(7946, "pod-0.svc."), (7947, "pod-1.svc")]);
        let records = decode_answer(9, &msg).unwrap().unwrap();
        assert_eq!(
            records,
            vec![
                SrvRecord {
                    target: "pod-0.svc".into(),
                    port: 7946
                },
                SrvRecord {
                    target: "pod-1.svc".into(),
                    port: 7947
                },
            ]
        );
    }

    #[test]
    fn a_target_compressed_into_the_question_is_expanded() {
        let query = encode_query(3, "_g._tcp.svc").unwrap();
        let mut msg = answer(&query, &[]);
        msg[6..8].copy_from_slice(&1u16.to_be_bytes());
        msg.extend_from_slice(&[0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 30]);
        // rdata: priority, weight, port 9000, then "pod" + pointer to "svc" (offset 12 + 3 + 5).
        let rdata = [0, 0, 0, 0, 0x23, 0x28, 3, b'p', b'o', b'd', 0xc0, 20];
        msg.extend_from_slice(&u16::try_from(rdata.len()).unwrap().to_be_bytes());
        msg.extend_from_slice(&rdata);
        let records = decode_answer(3, &msg).unwrap().unwrap();
        assert_eq!(records[0].target, "pod.svc");
        assert_eq!(records[0].port, 9000);
    }

    #[test]
    fn answers_to_other_queries_errors_and_loops_are_told_apart() {
        let query = encode_query(5, "_g._tcp.svc").unwrap();
        let msg = answer(&query, &[(1, "a")]);
        assert!(decode_answer(6, &msg).unwrap().is_none(), "another id");
        let mut nx = answer(&query, &[]);
        nx[3] |= 3;
        let error = decode_answer(5, &nx).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        let mut looped = answer(&query, &[]);
        looped[6..8].copy_from_slice(&1u16.to_be_bytes());
        let at = looped.len();
        looped.extend_from_slice(&[0xc0, u8::try_from(at).unwrap()]);
        assert!(decode_answer(5, &looped).is_err(), "a pointer to itself");
        assert!(
            decode_answer(5, &msg[..msg.len() - 3]).is_err(),
            "cut short"
        );
    }

    #[test]
    fn the_first_nameserver_of_resolv_conf_is_used() {
        let conf = "# comment\nsearch svc\nnameserver 10.96.0.10\nnameserver 8.8.8.8\n";
        assert_eq!(
            nameserver_of(conf),
            Some(SocketAddr::from(([10, 96, 0, 10], 53)))
        );
        assert_eq!(nameserver_of("search x\n"), None);
    }
}
