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
func (d *delegate) NotifyMsg(b []byte)                         { say("user %s", string(b)) }
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

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
