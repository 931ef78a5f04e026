// Command capture drives real hashicorp/memberlist (Debian's 0.2.2) clusters over loopback and
// records every packet and stream a node sends, through a Transport wrapper around memberlist's
// own NetTransport. The recorded bytes are memberlist's own encoding; they become the byte-exact
// test vectors of crates/rumour-memberlist (tests/vectors/*.json).
//
// Build and run in GOPATH mode, offline, against the Debian package:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run . -out ../../../../crates/rumour-memberlist/tests/vectors
package main

import (
	"bytes"
	"compress/lzw"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// vector is one recorded message as the JSON files hold it.
type vector struct {
	Kind string `json:"kind"` // "packet", "stream_out" (dialer wrote) or "stream_in" (dialer read)
	From string `json:"from"` // node that sent it
	Desc string `json:"desc"` // layer/type chain, e.g. "crc>compound[ping,alive]"
	Hex  string `json:"hex"`
}

type scenarioFile struct {
	Scenario          string   `json:"scenario"`
	About             string   `json:"about"`
	Key               string   `json:"key,omitempty"` // hex AES key when encrypted
	ProtocolVersion   int      `json:"protocol_version"`
	EnableCompression bool     `json:"enable_compression"`
	Vectors           []vector `json:"vectors"`
}

// recorder collects vectors, keeping at most perDesc of each (kind, desc).
type recorder struct {
	mu      sync.Mutex
	key     []byte
	perDesc int
	seen    map[string]int
	out     []vector
}

func (r *recorder) add(kind, from string, b []byte) {
	if len(b) == 0 {
		return
	}
	desc := r.describe(kind, b)
	r.mu.Lock()
	defer r.mu.Unlock()
	k := kind + " " + desc
	if r.seen[k] >= r.perDesc {
		return
	}
	r.seen[k]++
	r.out = append(r.out, vector{Kind: kind, From: from, Desc: desc, Hex: hex.EncodeToString(b)})
}

var typeNames = map[byte]string{
	0: "ping", 1: "indirect_ping", 2: "ack", 3: "suspect", 4: "alive", 5: "dead",
	6: "push_pull", 7: "compound", 8: "user", 9: "compress", 10: "encrypt", 11: "nack",
	12: "crc", 13: "err",
}

func (r *recorder) describe(kind string, b []byte) string {
	if r.key != nil {
		if kind == "packet" {
			plain, err := decrypt(r.key, b, nil)
			if err != nil {
				return "undecryptable"
			}
			return fmt.Sprintf("encrypted_v%d>%s", b[0], describeMsg(plain, true))
		}
		if b[0] != 10 || len(b) < 5 {
			return "unencrypted?" + describeMsg(b, false)
		}
		plain, err := decrypt(r.key, b[5:], b[:5])
		if err != nil {
			return "undecryptable"
		}
		return fmt.Sprintf("encrypt_v%d>%s", b[5], describeMsg(plain, false))
	}
	return describeMsg(b, kind == "packet")
}

// describeMsg names the chain of message types (packets: all of it; streams: the first message).
func describeMsg(b []byte, packet bool) string {
	if len(b) == 0 {
		return "empty"
	}
	name, ok := typeNames[b[0]]
	if !ok {
		return fmt.Sprintf("type%d", b[0])
	}
	switch b[0] {
	case 12:
		if len(b) < 5 {
			return "crc?"
		}
		return "crc>" + describeMsg(b[5:], packet)
	case 7:
		if !packet || len(b) < 2 {
			return name
		}
		n := int(b[1])
		if len(b) < 2+2*n {
			return "compound?"
		}
		rest := b[2+2*n:]
		parts := []string{}
		for i := 0; i < n; i++ {
			l := int(binary.BigEndian.Uint16(b[2+2*i:]))
			if len(rest) < l {
				return "compound?"
			}
			parts = append(parts, describeMsg(rest[:l], packet))
			rest = rest[l:]
		}
		sort.Strings(parts)
		return "compound[" + strings.Join(parts, ",") + "]"
	case 9:
		inner, err := decompress(b[1:])
		if err != nil {
			return "compress?"
		}
		return "compress>" + describeMsg(inner, packet)
	}
	return name
}

// decompress undoes memberlist's compress{Algo, Buf} wrapper; the msgpack map is parsed just
// enough to find Buf (old-spec raw).
func decompress(b []byte) ([]byte, error) {
	i := bytes.Index(b, []byte("\xa3Buf"))
	if i < 0 {
		return nil, fmt.Errorf("no Buf")
	}
	p := b[i+4:]
	var n, h int
	switch {
	case p[0]&0xe0 == 0xa0:
		n, h = int(p[0]&0x1f), 1
	case p[0] == 0xda:
		n, h = int(binary.BigEndian.Uint16(p[1:])), 3
	case p[0] == 0xdb:
		n, h = int(binary.BigEndian.Uint32(p[1:])), 5
	default:
		return nil, fmt.Errorf("Buf marker %x", p[0])
	}
	rd := lzw.NewReader(bytes.NewReader(p[h:h+n]), lzw.LSB, 8)
	defer rd.Close()
	return ioutil.ReadAll(rd)
}

func decrypt(key, msg, data []byte) ([]byte, error) {
	if len(msg) < 29 {
		return nil, fmt.Errorf("short")
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, msg[1:13], msg[13:], data)
	if err != nil {
		return nil, err
	}
	if msg[0] == 0 && len(plain) > 0 {
		plain = plain[:len(plain)-int(plain[len(plain)-1])]
	}
	return plain, nil
}

// recTransport wraps memberlist's NetTransport and records what this node sends.
type recTransport struct {
	*memberlist.NetTransport
	name string
	rec  *recorder
}

func (t *recTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	t.rec.add("packet", t.name, append([]byte(nil), b...))
	return t.NetTransport.WriteTo(b, addr)
}

func (t *recTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.rec.add("packet", t.name, append([]byte(nil), b...))
	return t.NetTransport.WriteToAddress(b, a)
}

func (t *recTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &recConn{Conn: c, t: t}, nil
}

func (t *recTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return &recConn{Conn: c, t: t}, nil
}

// recConn records both directions of a stream the node dialed.
type recConn struct {
	net.Conn
	t      *recTransport
	mu     sync.Mutex
	w, r   bytes.Buffer
	closed bool
}

func (c *recConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.w.Write(b)
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *recConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	c.r.Write(b[:n])
	c.mu.Unlock()
	return n, err
}

func (c *recConn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.t.rec.add("stream_out", c.t.name, append([]byte(nil), c.w.Bytes()...))
		c.t.rec.add("stream_in", c.t.name, append([]byte(nil), c.r.Bytes()...))
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// delegate gives every node metadata, user state and broadcasts nothing.
type delegate struct {
	name string
	got  chan []byte
}

func (d *delegate) NodeMeta(limit int) []byte                  { return []byte("meta-of-" + d.name) }
func (d *delegate) NotifyMsg(b []byte)                         { d.got <- append([]byte(nil), b...) }
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return []byte("user-state-of-" + d.name) }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

type pingDelegate struct{ name string }

func (p *pingDelegate) AckPayload() []byte { return []byte("ack-payload-of-" + p.name) }
func (p *pingDelegate) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
}

type scenario struct {
	name, about     string
	nodes           int
	compression     bool
	protocolVersion uint8
	key             []byte
	basePort        int
}

func node(s scenario, rec *recorder, i int) (*memberlist.Memberlist, *delegate) {
	name := fmt.Sprintf("%s-%d", s.name, i)
	port := s.basePort + i
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"}, BindPort: port,
		Logger: log.New(ioutil.Discard, "", 0),
	})
	if err != nil {
		log.Fatalf("transport %s: %v", name, err)
	}
	conf := memberlist.DefaultLocalConfig()
	conf.Name = name
	conf.BindAddr = "127.0.0.1"
	conf.BindPort = port
	conf.AdvertiseAddr = "127.0.0.1"
	conf.AdvertisePort = port
	conf.Transport = &recTransport{NetTransport: nt, name: name, rec: rec}
	conf.ProbeInterval = 60 * time.Millisecond
	conf.ProbeTimeout = 20 * time.Millisecond
	conf.GossipInterval = 20 * time.Millisecond
	conf.PushPullInterval = 300 * time.Millisecond
	conf.SuspicionMult = 2
	conf.GossipToTheDeadTime = 5 * time.Second
	conf.EnableCompression = s.compression
	conf.ProtocolVersion = s.protocolVersion
	conf.SecretKey = s.key
	conf.LogOutput = ioutil.Discard
	d := &delegate{name: name, got: make(chan []byte, 64)}
	conf.Delegate = d
	conf.Ping = &pingDelegate{name: name}
	m, err := memberlist.Create(conf)
	if err != nil {
		log.Fatalf("create %s: %v", name, err)
	}
	return m, d
}

func run(s scenario, outDir string) {
	rec := &recorder{key: s.key, perDesc: 2, seen: map[string]int{}}
	var ms []*memberlist.Memberlist
	var ds []*delegate
	for i := 0; i < s.nodes; i++ {
		m, d := node(s, rec, i)
		ms = append(ms, m)
		ds = append(ds, d)
	}
	for i := 1; i < s.nodes; i++ {
		if _, err := ms[i].Join([]string{fmt.Sprintf("127.0.0.1:%d", s.basePort)}); err != nil {
			log.Fatalf("%s join: %v", s.name, err)
		}
	}
	wait := func(what string, ok func() bool) {
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				log.Fatalf("%s: timed out waiting for %s", s.name, what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait("convergence", func() bool {
		for _, m := range ms {
			if m.NumMembers() != s.nodes {
				return false
			}
		}
		return true
	})
	time.Sleep(400 * time.Millisecond) // let probes, gossip and a push/pull happen

	// User messages over both channels.
	to := ms[1].LocalNode()
	if err := ms[0].SendBestEffort(to, []byte("best-effort user message")); err != nil {
		log.Fatalf("%s best effort: %v", s.name, err)
	}
	if err := ms[0].SendReliable(to, []byte("reliable user message")); err != nil {
		log.Fatalf("%s reliable: %v", s.name, err)
	}
	for i := 0; i < 2; i++ {
		select {
		case <-ds[1].got:
		case <-time.After(5 * time.Second):
			log.Fatalf("%s: user message %d not delivered", s.name, i)
		}
	}

	if s.nodes >= 3 {
		// Crash the last node: probes fail, indirect pings and nacks, suspect, dead.
		last := ms[s.nodes-1]
		last.Shutdown()
		wait("dead", func() bool { return ms[0].NumMembers() == s.nodes-1 })
		time.Sleep(200 * time.Millisecond)
		ms = ms[:s.nodes-1]
	}
	// A graceful leave: dead with From == Node.
	if err := ms[len(ms)-1].Leave(2 * time.Second); err != nil {
		log.Fatalf("%s leave: %v", s.name, err)
	}
	time.Sleep(200 * time.Millisecond)
	for _, m := range ms {
		m.Shutdown()
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	sort.SliceStable(rec.out, func(i, j int) bool {
		if rec.out[i].Kind != rec.out[j].Kind {
			return rec.out[i].Kind < rec.out[j].Kind
		}
		return rec.out[i].Desc < rec.out[j].Desc
	})
	f := scenarioFile{
		Scenario: s.name, About: s.about, ProtocolVersion: int(s.protocolVersion),
		EnableCompression: s.compression, Vectors: rec.out,
	}
	if s.key != nil {
		f.Key = hex.EncodeToString(s.key)
	}
	js, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(outDir, s.name+".json")
	if err := ioutil.WriteFile(path, append(js, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "%s: %d vectors -> %s\n", s.name, len(rec.out), path)
}

func main() {
	out := flag.String("out", ".", "directory for the JSON vector files")
	flag.Parse()
	key16 := []byte("rumour-key-16-b!")
	key32 := []byte("rumour-memberlist-32-byte-key!!!")
	scenarios := []scenario{
		{name: "plain", about: "3 nodes, no compression, no encryption: join, probes, user messages, a crash (indirect pings, nacks, suspect, dead) and a leave", nodes: 3, protocolVersion: 2, basePort: 47100},
		{name: "compressed", about: "2 nodes with LZW compression: packets compressed when smaller, streams always", nodes: 2, compression: true, protocolVersion: 2, basePort: 47110},
		{name: "encrypted_v1", about: "2 nodes, AES-128-GCM with the key given, encryption version 1 (protocol version 2), no compression", nodes: 2, protocolVersion: 2, key: key16, basePort: 47120},
		{name: "encrypted_v1_aes256_compressed", about: "2 nodes, AES-256-GCM with the key given, encryption version 1, LZW compression", nodes: 2, compression: true, protocolVersion: 2, key: key32, basePort: 47130},
		{name: "encrypted_v0", about: "2 nodes, AES-128-GCM, protocol version 1 so encryption version 0 (PKCS7 padding), no compression", nodes: 2, protocolVersion: 1, key: key16, basePort: 47140},
	}
	writeLZW(*out)
	for _, s := range scenarios {
		run(s, *out)
	}
}

// lzwCase is one input and what Go's compress/lzw (LSB, litWidth 8: memberlist's
// compressPayload) makes of it.
type lzwCase struct {
	Name   string `json:"name"`
	Input  string `json:"input"`
	Output string `json:"output"`
}

// writeLZW records Go's LZW output for inputs that exercise the code-width steps and the
// table reset at 4095 codes, which a packet never reaches but a large push/pull does.
func writeLZW(outDir string) {
	text := []byte{}
	for i := 0; len(text) < 60000; i++ {
		text = append(text, fmt.Sprintf("node-%d alive incarnation %d; ", i%97, i%13)...)
	}
	noise := make([]byte, 12000)
	x := uint32(2463534242)
	for i := range noise {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		noise[i] = byte(x)
	}
	inputs := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"one_byte", []byte{0x42}},
		{"short_text", []byte("TOBEORNOTTOBEORTOBEORNOT#")},
		{"repeats", bytes.Repeat([]byte{0}, 5000)},
		{"text_60k", text},
		{"noise_12k", noise},
	}
	var cases []lzwCase
	for _, c := range inputs {
		var buf bytes.Buffer
		w := lzw.NewWriter(&buf, lzw.LSB, 8)
		if _, err := w.Write(c.in); err != nil {
			log.Fatal(err)
		}
		if err := w.Close(); err != nil {
			log.Fatal(err)
		}
		cases = append(cases, lzwCase{Name: c.name, Input: hex.EncodeToString(c.in), Output: hex.EncodeToString(buf.Bytes())})
	}
	js, err := json.MarshalIndent(cases, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	if err := ioutil.WriteFile(filepath.Join(outDir, "lzw.json"), append(js, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
}
