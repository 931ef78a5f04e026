// Command peer runs one real hashicorp/memberlist (Debian's 0.2.2) node for `cargo xtask
// interop`, driven over stdin and reporting on stdout, one line each. The Rust peer
// (`rumour-benches --bin interop-peer`) speaks the same lines, so the orchestrator drives both
// kinds alike.
//
// Flags: -name, -bind host:port, -join a,b, -key base64 (AES), -compression.
//
// Commands (stdin):       members | send <name> <text> | meta <text> | leave | quit
// Reports (stdout):       ready <addr>
//
//	members <name>:<alive|suspect|dead|left>:<meta> ...
//	user <text>
//	kv <key> <codec>            (a user message that is a dskit KeyValuePair)
//	kvstate <key>:<codec> ...   (a push/pull's user state in dskit's LocalState framing)
//	left
//
// Build in GOPATH mode, offline, against the Debian package:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o peer .
package main

import (
	"bufio"
	"encoding/base64"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

var out = struct {
	sync.Mutex
	w *bufio.Writer
}{w: bufio.NewWriter(os.Stdout)}

func say(format string, args ...interface{}) {
	out.Lock()
	defer out.Unlock()
	fmt.Fprintf(out.w, format+"\n", args...)
	out.w.Flush()
}

// delegate holds the node's metadata and reports user messages.
type delegate struct {
	mu   sync.Mutex
	meta []byte
}

func (d *delegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]byte(nil), d.meta...)
}

// NotifyMsg reports a user message; one that parses as a dskit KeyValuePair with a key and a
// codec is reported as `kv <key> <codec>` instead, as dskit's memberlist KV would take it.
func (d *delegate) NotifyMsg(b []byte) {
	if key, codec, ok := parsePair(b); ok {
		say("kv %s %s", key, codec)
		return
	}
	say("user %s", string(b))
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }

// MergeRemoteState reports the keys of a push/pull's user state read as dskit's LocalState
// framing: `[u32 big-endian length][KeyValuePair]` per key.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	var keys []string
	for len(buf) >= 4 {
		n := int(buf[0])<<24 | int(buf[1])<<16 | int(buf[2])<<8 | int(buf[3])
		if n > len(buf)-4 {
			say("kvstate-error framing")
			return
		}
		key, codec, ok := parsePair(buf[4 : 4+n])
		if !ok {
			say("kvstate-error pair")
			return
		}
		keys = append(keys, key+":"+codec)
		buf = buf[4+n:]
	}
	if len(buf) != 0 {
		say("kvstate-error trailing")
		return
	}
	if len(keys) > 0 {
		sort.Strings(keys)
		say("kvstate %s", strings.Join(keys, " "))
	}
}

// parsePair reads a dskit KeyValuePair (protobuf: 1 key, 2 value, 3 codec, 4 deleted, 5
// update_time_millis), by hand so that the peer needs no protobuf package; ok when it parses
// and names a key and a codec.
func parsePair(b []byte) (key, codec string, ok bool) {
	varint := func() (uint64, bool) {
		var v uint64
		for shift := uint(0); shift < 64; shift += 7 {
			if len(b) == 0 {
				return 0, false
			}
			c := b[0]
			b = b[1:]
			v |= uint64(c&0x7f) << shift
			if c < 0x80 {
				return v, true
			}
		}
		return 0, false
	}
	for len(b) > 0 {
		tag, good := varint()
		if !good {
			return "", "", false
		}
		switch tag & 7 {
		case 0:
			if _, good = varint(); !good {
				return "", "", false
			}
		case 2:
			n, good := varint()
			if !good || n > uint64(len(b)) {
				return "", "", false
			}
			field := string(b[:n])
			b = b[n:]
			switch tag >> 3 {
			case 1:
				key = field
			case 3:
				codec = field
			}
		default:
			return "", "", false
		}
	}
	return key, codec, key != "" && codec != ""
}

// events tracks every member's state, dead and left ones included (Members() omits them).
type events struct {
	mu     sync.Mutex
	states map[string]string
	metas  map[string]string
}

func (e *events) set(n *memberlist.Node, state string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.states[n.Name] = state
	e.metas[n.Name] = string(n.Meta)
}
func (e *events) NotifyJoin(n *memberlist.Node)   { e.set(n, "alive") }
func (e *events) NotifyUpdate(n *memberlist.Node) { e.set(n, "alive") }
func (e *events) NotifyLeave(n *memberlist.Node)  { e.set(n, "dead") }

// internalState reads a member's state from memberlist's own table. 0.2.2 hands NotifyLeave a
// Node whose State field is shadowed by nodeState.State and so still reads alive: a leave and
// a failure look alike there. Reflection reads the real field (read only, without the lock:
// good enough for a test peer).
func internalState(list *memberlist.Memberlist, name string) (memberlist.NodeStateType, bool) {
	nodes := reflect.ValueOf(list).Elem().FieldByName("nodes")
	for i := 0; i < nodes.Len(); i++ {
		ns := nodes.Index(i).Elem()
		if ns.FieldByName("Node").FieldByName("Name").String() == name {
			return memberlist.NodeStateType(ns.FieldByName("State").Int()), true
		}
	}
	return 0, false
}

func main() {
	name := flag.String("name", "go", "node name")
	bind := flag.String("bind", "127.0.0.1:0", "UDP and TCP address")
	join := flag.String("join", "", "comma-separated seeds")
	key := flag.String("key", "", "AES key, standard base64")
	compression := flag.Bool("compression", false, "LZW compression")
	flag.Parse()

	host, portText, err := net.SplitHostPort(*bind)
	if err != nil {
		log.Fatal(err)
	}
	port, _ := strconv.Atoi(portText)
	config := memberlist.DefaultLocalConfig()
	config.Name = *name
	config.BindAddr = host
	config.BindPort = port
	config.AdvertisePort = port
	config.EnableCompression = *compression
	config.LogOutput = ioutil.Discard
	if os.Getenv("INTEROP_DEBUG") != "" {
		config.LogOutput = os.Stderr
	}
	if *key != "" {
		raw, err := base64.StdEncoding.DecodeString(*key)
		if err != nil {
			log.Fatal(err)
		}
		config.SecretKey = raw
	}
	d := &delegate{}
	ev := &events{states: map[string]string{}, metas: map[string]string{}}
	config.Delegate = d
	config.Events = ev
	list, err := memberlist.Create(config)
	if err != nil {
		log.Fatal(err)
	}
	local := list.LocalNode()
	say("ready %s", net.JoinHostPort(local.Addr.String(), strconv.Itoa(int(local.Port))))
	if *join != "" {
		go func() {
			for attempt := 0; attempt < 60; attempt++ {
				if _, err := list.Join(strings.Split(*join, ",")); err == nil {
					return
				}
				time.Sleep(500 * time.Millisecond)
			}
		}()
	}

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fields := strings.SplitN(strings.TrimSpace(in.Text()), " ", 3)
		switch fields[0] {
		case "members":
			ev.mu.Lock()
			names := make([]string, 0, len(ev.states))
			for n := range ev.states {
				names = append(names, n)
			}
			sort.Strings(names)
			parts := []string{}
			for _, n := range names {
				state := ev.states[n]
				if s, ok := internalState(list, n); ok && state == "dead" && s == memberlist.StateLeft {
					state = "left"
				}
				parts = append(parts, fmt.Sprintf("%s:%s:%s", n, state, ev.metas[n]))
			}
			ev.mu.Unlock()
			say("members %s", strings.Join(parts, " "))
		case "send":
			if len(fields) < 3 {
				continue
			}
			for _, n := range list.Members() {
				if n.Name == fields[1] {
					if err := list.SendReliable(n, []byte(fields[2])); err != nil {
						log.Printf("send: %v", err)
					}
				}
			}
		case "meta":
			d.mu.Lock()
			if len(fields) > 1 {
				d.meta = []byte(fields[1])
			}
			d.mu.Unlock()
			if err := list.UpdateNode(5 * time.Second); err != nil {
				log.Printf("meta: %v", err)
			}
		case "leave":
			if err := list.Leave(5 * time.Second); err != nil {
				log.Printf("leave: %v", err)
			}
			say("left")
		case "quit":
			list.Shutdown()
			return
		}
	}
	list.Shutdown()
}
