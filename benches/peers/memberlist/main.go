// Command memberlist-bench runs hashicorp/memberlist through the scenarios of rumour's cluster
// benchmark (benches/src/bin/cluster.rs) and prints the same JSON lines, with "impl":
// "memberlist". N nodes run in this one process on 127.0.0.1, each on its own UDP and TCP port,
// all with one configuration:
//
//	memberlist-bench --scenario all --nodes 64 --profile fast --repeat 3 --seed 1 --steady-secs 20
//
// Build it offline against Debian's golang-github-hashicorp-memberlist-dev (GOPATH mode):
//
//	GO111MODULE=off GOPATH=$(mktemp -d):/usr/share/gocode go build -o memberlist-bench .
//
// or let `cargo xtask bench-peers` build and run it. See docs/benchmarks.md ("Side by side with
// hashicorp/memberlist") for what each scenario times and where the two differ.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// The constants of benches/src/cluster/{harness,scenario}.rs, with the same meaning.
const (
	// How often the join poll asks every node how many members it sees alive.
	joinPoll = 10 * time.Millisecond
	// How long the benchmark waits for a cluster to converge.
	convergeTimeout = 120 * time.Second
	// How long to wait after stopping a cluster before the next one starts.
	settle = 300 * time.Millisecond
	// How often `broadcast` asks the nodes still without the message whether they have it.
	broadcastPoll = 5 * time.Millisecond
	// How long `broadcast` waits for the message to reach every node.
	broadcastTimeout = 60 * time.Second
	// The size of the value `broadcast` sends (rumour writes a ring whose one instance has a
	// 64-byte address).
	payloadBytes = 64
	// Clock ticks per second in /proc/self/stat (Linux's USER_HZ).
	userHZ = 100.0
	// dskit's join back-off (rumour's JoinSettings defaults): 1 s doubling to 1 min, 10
	// retries after the first attempt.
	joinMinBackoff = time.Second
	joinMaxBackoff = time.Minute
	joinMaxRetries = 10
)

var scenarioNames = []string{"join", "detect", "broadcast", "steady"}

// settings are shared by every repetition of a run.
type settings struct {
	nodes   int
	profile string
	seed    int64
	steady  time.Duration
	warmup  time.Duration
	keys    bool
}

// sample is what one repetition measured.
type sample struct {
	seconds      *float64
	firstSeconds *float64
	idle         *idle
}

// idle is the cost of an idle cluster, per node and second.
type idle struct {
	cpu     *float64
	bytes   float64
	packets float64
}

func (s sample) String() string {
	var b strings.Builder
	if s.firstSeconds != nil {
		fmt.Fprintf(&b, "first %.3f s, ", *s.firstSeconds)
	}
	if s.seconds != nil {
		fmt.Fprintf(&b, "all %.3f s", *s.seconds)
	}
	if s.idle != nil {
		if s.idle.cpu != nil {
			fmt.Fprintf(&b, "%.5f cpu-s, ", *s.idle.cpu)
		}
		fmt.Fprintf(&b, "%.0f B, %.1f packets per node-second", s.idle.bytes, s.idle.packets)
	}
	return b.String()
}

func main() {
	scenario := flag.String("scenario", "all", "join, detect, broadcast, steady, a comma-separated list of them, or all")
	nodes := flag.Int("nodes", 16, "cluster size (at least 2)")
	profile := flag.String("profile", "lan", "every node's configuration: lan or fast")
	repeat := flag.Int("repeat", 3, "repetitions per scenario, each on a fresh cluster")
	seed := flag.Int64("seed", 1, "picks the victim of detect and the origin of broadcast")
	steadySecs := flag.Int("steady-secs", 20, "the idle window of steady, in seconds")
	steadyWarmupSecs := flag.Int("steady-warmup-secs", 2, "how long steady lets the converged cluster settle before the window, in seconds")
	keys := flag.Bool("keys", false, "encrypt every message with one cluster key (memberlist's AES-GCM)")
	flag.Parse()

	fail := func(format string, args ...interface{}) {
		fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
		os.Exit(1)
	}
	var scenarios []string
	if *scenario == "all" {
		scenarios = scenarioNames
	} else {
		for _, name := range strings.Split(*scenario, ",") {
			name = strings.TrimSpace(name)
			if !contains(scenarioNames, name) {
				fail("unknown scenario `%s`; expected join, detect, broadcast, steady or all", name)
			}
			scenarios = append(scenarios, name)
		}
	}
	if *nodes < 2 || *nodes > 65535 {
		fail("--nodes %d: expected 2 to 65535", *nodes)
	}
	if *profile != "lan" && *profile != "fast" {
		fail("--profile %s: expected lan or fast", *profile)
	}
	if *repeat < 1 || *repeat > 65535 {
		fail("--repeat %d: expected 1 to 65535", *repeat)
	}
	if *steadySecs < 0 {
		fail("--steady-secs %d: expected a number of seconds", *steadySecs)
	}
	if *steadyWarmupSecs < 0 {
		fail("--steady-warmup-secs %d: expected a number of seconds", *steadyWarmupSecs)
	}
	s := settings{
		nodes:   *nodes,
		profile: *profile,
		seed:    *seed,
		steady:  time.Duration(*steadySecs) * time.Second,
		warmup:  time.Duration(*steadyWarmupSecs) * time.Second,
		keys:    *keys,
	}
	for _, name := range scenarios {
		var samples []sample
		for rep := 0; rep < *repeat; rep++ {
			keysNote := ""
			if s.keys {
				keysNote = " keys"
			}
			fmt.Fprintf(os.Stderr, "%s n=%d profile=%s%s repetition %d/%d: ", name, s.nodes, s.profile, keysNote, rep+1, *repeat)
			smp, err := run(name, s, rep)
			if err != nil {
				fmt.Fprintln(os.Stderr)
				fail("%v", err)
			}
			fmt.Fprintln(os.Stderr, smp)
			samples = append(samples, smp)
		}
		line, err := json.Marshal(newReport(name, s, samples))
		if err != nil {
			fail("cannot encode the report: %v", err)
		}
		fmt.Println(string(line))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// config is memberlist's DefaultLANConfig, or with `fast` the same changes rumour's fast
// profile makes: 200 ms probes, a 100 ms probe timeout, 50 ms gossip and a 5 s push/pull.
func config(profile string) *memberlist.Config {
	conf := memberlist.DefaultLANConfig()
	if profile == "fast" {
		conf.ProbeInterval = 200 * time.Millisecond
		conf.ProbeTimeout = 100 * time.Millisecond
		conf.GossipInterval = 50 * time.Millisecond
		conf.PushPullInterval = 5 * time.Second
	}
	return conf
}

// detectionBound is rumour's BenchProfile::detection_bound with memberlist's formulas (the
// same ones): two probe periods and a probe timeout, the longest suspicion timeout, and two
// seconds for the news to spread. Only the deadline of `detect` uses it.
func detectionBound(conf *memberlist.Config, n int) time.Duration {
	scale := math.Max(1, math.Log10(math.Max(1, float64(n))))
	min := time.Duration(conf.SuspicionMult) * time.Duration(scale*1000) * conf.ProbeInterval / 1000
	max := time.Duration(conf.SuspicionMaxTimeoutMult) * min
	return 2*conf.ProbeInterval + conf.ProbeTimeout + max + 2*time.Second
}

// run runs repetition `rep` of `scenario` on a fresh cluster and stops the cluster afterwards
// (also when the measurement fails).
func run(scenario string, s settings, rep int) (sample, error) {
	rng := rand.New(rand.NewSource(s.seed*1_000_003 + int64(rep)))
	c, joinsStarted, err := startCluster(s, rng)
	if err != nil {
		return sample{}, err
	}
	defer c.stop()
	converged, err := c.converge()
	if err != nil {
		return sample{}, err
	}
	switch scenario {
	case "join":
		secs := converged.Sub(joinsStarted).Seconds()
		return sample{seconds: &secs}, nil
	case "detect":
		return c.detect(s, rng)
	case "broadcast":
		return c.broadcast(rng, rep)
	default:
		return c.steadyState(s.warmup, s.steady)
	}
}

// counters count what one node's transport sends.
type counters struct {
	bytes   atomic.Uint64
	packets atomic.Uint64
}

// countingTransport is memberlist's NetTransport with every datagram and every stream write
// counted: probes, acks, gossip, and both sides of push/pull and TCP-fallback pings.
type countingTransport struct {
	net     *memberlist.NetTransport
	sent    *counters
	streams chan net.Conn
	done    chan struct{}
}

func newCountingTransport(nt *memberlist.NetTransport, sent *counters) *countingTransport {
	t := &countingTransport{net: nt, sent: sent, streams: make(chan net.Conn), done: make(chan struct{})}
	go func() {
		for {
			select {
			case conn := <-nt.StreamCh():
				select {
				case t.streams <- &countingConn{Conn: conn, sent: sent}:
				case <-t.done:
					conn.Close()
					return
				}
			case <-t.done:
				return
			}
		}
	}()
	return t
}

func (t *countingTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.net.FinalAdvertiseAddr(ip, port)
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	at, err := t.net.WriteTo(b, addr)
	if err == nil {
		t.sent.bytes.Add(uint64(len(b)))
		t.sent.packets.Add(1)
	}
	return at, err
}

func (t *countingTransport) PacketCh() <-chan *memberlist.Packet { return t.net.PacketCh() }

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	conn, err := t.net.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, sent: t.sent}, nil
}

func (t *countingTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown stops the NetTransport first: its TCP listener may be handing over a connection,
// which the forwarding goroutine must still take (memberlist itself shuts the transport down
// before its own handlers for the same reason).
func (t *countingTransport) Shutdown() error {
	err := t.net.Shutdown()
	close(t.done)
	return err
}

// countingConn counts the bytes of every write, and each write as one reliable message
// (memberlist writes each stream message with one Write).
type countingConn struct {
	net.Conn
	sent *counters
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.sent.bytes.Add(uint64(n))
		c.sent.packets.Add(1)
	}
	return n, err
}

// node is one member with its delegates.
type node struct {
	name  string
	list  *memberlist.Memberlist
	queue *memberlist.TransmitLimitedQueue
	sent  *counters
	// The instant this node's NotifyMsg first saw the current broadcast (unix nanoseconds, 0
	// while it has not), and the message it waits for.
	seenAt atomic.Int64
	want   atomic.Value
	// Where NotifyLeave reports members declared dead or gone.
	watch *deathWatch
	index int
}

// deathWatch records, per node, when it first declared the victim dead.
type deathWatch struct {
	mu     sync.Mutex
	victim string
	at     []time.Time
	left   int
	done   chan struct{}
}

func (w *deathWatch) arm(victim string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.victim = victim
	w.at = make([]time.Time, n)
	w.left = n - 1
	w.done = make(chan struct{})
}

func (w *deathWatch) saw(observer int, name string) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done == nil || name != w.victim || !w.at[observer].IsZero() {
		return
	}
	w.at[observer] = now
	w.left--
	if w.left == 0 {
		close(w.done)
	}
}

// The memberlist delegates of a node.
func (n *node) NodeMeta(limit int) []byte { return nil }

func (n *node) NotifyMsg(msg []byte) {
	want, _ := n.want.Load().(string)
	if want == "" || string(msg) != want {
		return
	}
	if n.seenAt.CompareAndSwap(0, time.Now().UnixNano()) {
		// Pass it on, as serf and dskit do with what they receive.
		n.queue.QueueBroadcast(&userBroadcast{msg: append([]byte(nil), msg...)})
	}
}

func (n *node) GetBroadcasts(overhead, limit int) [][]byte {
	return n.queue.GetBroadcasts(overhead, limit)
}

func (n *node) LocalState(join bool) []byte            { return nil }
func (n *node) MergeRemoteState(buf []byte, join bool) {}
func (n *node) NotifyJoin(*memberlist.Node)            {}
func (n *node) NotifyUpdate(*memberlist.Node)          {}
func (n *node) NotifyLeave(m *memberlist.Node)         { n.watch.saw(n.index, m.Name) }

// userBroadcast is one user message in a TransmitLimitedQueue.
type userBroadcast struct{ msg []byte }

func (b *userBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b *userBroadcast) Message() []byte                       { return b.msg }
func (b *userBroadcast) Finished()                             {}

// cluster is N running nodes on 127.0.0.1; node 0 is the seed every other node joins.
type cluster struct {
	nodes []*node
	watch *deathWatch
}

// startCluster starts node 0, then nodes 1..n-1 back to back, each joining node 0 in the
// background (as rumour's builder does). It returns the instant just before the first join
// was started.
func startCluster(s settings, rng *rand.Rand) (*cluster, time.Time, error) {
	var key []byte
	if s.keys {
		key = make([]byte, 32)
		rng.Read(key)
	}
	c := &cluster{watch: &deathWatch{}}
	first, err := c.startNode(0, s, key)
	if err != nil {
		return nil, time.Time{}, err
	}
	seed := first.list.LocalNode().Address()
	joinsStarted := time.Now()
	for i := 1; i < s.nodes; i++ {
		n, err := c.startNode(i, s, key)
		if err != nil {
			c.stop()
			return nil, time.Time{}, err
		}
		go join(n, seed)
	}
	return c, joinsStarted, nil
}

// join joins `seed` with dskit's back-off until it succeeds or the retries are spent.
func join(n *node, seed string) {
	backoff := joinMinBackoff
	for attempt := 0; attempt <= joinMaxRetries; attempt++ {
		if _, err := n.list.Join([]string{seed}); err == nil {
			return
		} else if errors.Is(err, net.ErrClosed) {
			return
		}
		time.Sleep(backoff)
		backoff *= 2
		if backoff > joinMaxBackoff {
			backoff = joinMaxBackoff
		}
	}
}

func (c *cluster) startNode(i int, s settings, key []byte) (*node, error) {
	name := fmt.Sprintf("node-%03d", i)
	quiet := log.New(io.Discard, "", 0)
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"},
		BindPort:  0,
		Logger:    quiet,
	})
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", name, err)
	}
	port := nt.GetAutoBindPort()
	n := &node{name: name, sent: &counters{}, watch: c.watch, index: i}
	conf := config(s.profile)
	conf.Name = name
	conf.BindAddr = "127.0.0.1"
	conf.BindPort = port
	conf.AdvertiseAddr = "127.0.0.1"
	conf.AdvertisePort = port
	conf.Logger = quiet
	conf.Transport = newCountingTransport(nt, n.sent)
	conf.Delegate = n
	conf.Events = n
	conf.SecretKey = key
	n.queue = &memberlist.TransmitLimitedQueue{RetransmitMult: conf.RetransmitMult}
	list, err := memberlist.Create(conf)
	if err != nil {
		conf.Transport.Shutdown()
		return nil, fmt.Errorf("node %s: %w", name, err)
	}
	n.list = list
	n.queue.NumNodes = list.NumMembers
	c.nodes = append(c.nodes, n)
	return n, nil
}

// numAlive counts the members `n` holds in state alive, itself included (rumour's num_alive;
// memberlist's NumMembers would count suspects too).
func numAlive(n *node) int {
	alive := 0
	for _, m := range n.list.Members() {
		if m.State == memberlist.StateAlive {
			alive++
		}
	}
	return alive
}

// converge asks every node, every joinPoll, how many members it sees alive, and returns the
// instant at the end of the first round in which every node saw all of them.
func (c *cluster) converge() (time.Time, error) {
	n := len(c.nodes)
	deadline := time.Now().Add(convergeTimeout)
	for {
		all := true
		for _, node := range c.nodes {
			if numAlive(node) < n {
				all = false
				break
			}
		}
		if all {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("timed out after %v waiting until all %d nodes see %d members alive", convergeTimeout, n, n)
		}
		time.Sleep(joinPoll)
	}
}

// stop stops every node at once (abruptly, without a leave) and waits a moment for the sockets
// to close.
func (c *cluster) stop() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func(n *node) {
			defer wg.Done()
			n.list.Shutdown()
		}(n)
	}
	wg.Wait()
	time.Sleep(settle)
}

// detect stops a random node other than node 0 abruptly and times until the first and the last
// survivor declare it dead, from each survivor's NotifyLeave (watched before the stop).
func (c *cluster) detect(s settings, rng *rand.Rand) (sample, error) {
	n := len(c.nodes)
	victim := c.nodes[1+rng.Intn(n-1)]
	timeout := 2*detectionBound(config(s.profile), n) + 10*time.Second
	c.watch.arm(victim.name, n)
	crashed := time.Now()
	victim.list.Shutdown()
	select {
	case <-c.watch.done:
	case <-time.After(timeout):
		c.watch.mu.Lock()
		left := c.watch.left
		c.watch.mu.Unlock()
		return sample{}, fmt.Errorf("timed out after %v waiting until every survivor declares %s failed (%d of %d still waiting)", timeout, victim.name, left, n-1)
	}
	c.watch.mu.Lock()
	defer c.watch.mu.Unlock()
	first, last := math.Inf(1), 0.0
	for i, at := range c.watch.at {
		if i == victim.index {
			continue
		}
		secs := at.Sub(crashed).Seconds()
		first = math.Min(first, secs)
		last = math.Max(last, secs)
	}
	return sample{seconds: &last, firstSeconds: &first}, nil
}

// broadcast queues one user message at a random node and times until every node's NotifyMsg
// has seen it, polling the nodes that have not yet every broadcastPoll.
func (c *cluster) broadcast(rng *rand.Rand, rep int) (sample, error) {
	origin := c.nodes[rng.Intn(len(c.nodes))]
	key := fmt.Sprintf("bench/broadcast-%d", rep)
	msg := key + "=" + fmt.Sprintf("%-*s", payloadBytes, "127.0.0.1:1")
	msg = strings.ReplaceAll(msg, " ", "-")
	for _, n := range c.nodes {
		n.want.Store(msg)
	}
	written := time.Now()
	origin.seenAt.Store(written.UnixNano())
	origin.queue.QueueBroadcast(&userBroadcast{msg: []byte(msg)})
	seen := make([]time.Time, len(c.nodes))
	deadline := written.Add(broadcastTimeout)
	for {
		missing := 0
		for i, n := range c.nodes {
			if seen[i].IsZero() && n.seenAt.Load() != 0 {
				seen[i] = time.Now()
			}
			if seen[i].IsZero() {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			return sample{}, fmt.Errorf("timed out after %v waiting until every node holds %s (%d of %d nodes still waiting)", broadcastTimeout, key, missing, len(c.nodes))
		}
		time.Sleep(broadcastPoll)
	}
	last := written
	for _, at := range seen {
		if at.After(last) {
			last = at
		}
	}
	secs := last.Sub(written).Seconds()
	return sample{seconds: &secs}, nil
}

// steadyState lets the converged cluster settle, then counts the process's CPU time and the
// nodes' traffic over `window`.
func (c *cluster) steadyState(warmup, window time.Duration) (sample, error) {
	time.Sleep(warmup)
	cpuBefore, cpuOK := cpuSeconds()
	bytesBefore, packetsBefore := c.traffic()
	started := time.Now()
	time.Sleep(window)
	cpuAfter, cpuOK2 := cpuSeconds()
	bytesAfter, packetsAfter := c.traffic()
	nodeSeconds := float64(len(c.nodes)) * time.Since(started).Seconds()
	result := &idle{
		bytes:   float64(bytesAfter-bytesBefore) / nodeSeconds,
		packets: float64(packetsAfter-packetsBefore) / nodeSeconds,
	}
	if cpuOK && cpuOK2 {
		cpu := (cpuAfter - cpuBefore) / nodeSeconds
		result.cpu = &cpu
	}
	return sample{idle: result}, nil
}

// traffic is the bytes and messages (datagrams and stream writes) every node sent so far.
func (c *cluster) traffic() (uint64, uint64) {
	var bytes, packets uint64
	for _, n := range c.nodes {
		bytes += n.sent.bytes.Load()
		packets += n.sent.packets.Load()
	}
	return bytes, packets
}

// cpuSeconds is the CPU time (user + system) this process has used so far, read from
// /proc/self/stat as rumour's benchmark reads it; false without /proc.
func cpuSeconds() (float64, bool) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	return parseCPUSeconds(string(stat))
}

// parseCPUSeconds reads utime + stime (fields 14 and 15) of a /proc/<pid>/stat line, counting
// fields from the last ')' since the command name may hold spaces and parentheses.
func parseCPUSeconds(stat string) (float64, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(stat[i+1:])
	if len(fields) <= 15-3 {
		return 0, false
	}
	utime, err1 := strconv.ParseUint(fields[14-3], 10, 64)
	stime, err2 := strconv.ParseUint(fields[15-3], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return float64(utime+stime) / userHZ, true
}

// summary is the median, minimum and maximum of the repetitions, in seconds.
type summary struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// report is one scenario's JSON line: the fields and meanings of
// benches/src/cluster/report.rs; fields that do not apply to the scenario are left out.
type report struct {
	Impl            string   `json:"impl"`
	Profile         string   `json:"profile"`
	N               int      `json:"n"`
	Keys            bool     `json:"keys,omitempty"`
	Scenario        string   `json:"scenario"`
	Repeat          int      `json:"repeat"`
	Seconds         *summary `json:"seconds,omitempty"`
	FirstSeconds    *summary `json:"first_seconds,omitempty"`
	CPUPerNodeS     *float64 `json:"cpu_per_node_s,omitempty"`
	BytesPerNodeS   *float64 `json:"bytes_per_node_s,omitempty"`
	PacketsPerNodeS *float64 `json:"packets_per_node_s,omitempty"`
}

func newReport(scenario string, s settings, samples []sample) report {
	var seconds, first, cpu, bytes, packets []float64
	for _, smp := range samples {
		if smp.seconds != nil {
			seconds = append(seconds, *smp.seconds)
		}
		if smp.firstSeconds != nil {
			first = append(first, *smp.firstSeconds)
		}
		if smp.idle != nil {
			if smp.idle.cpu != nil {
				cpu = append(cpu, *smp.idle.cpu)
			}
			bytes = append(bytes, smp.idle.bytes)
			packets = append(packets, smp.idle.packets)
		}
	}
	return report{
		Impl:            "memberlist",
		Profile:         s.profile,
		N:               s.nodes,
		Keys:            s.keys,
		Scenario:        scenario,
		Repeat:          len(samples),
		Seconds:         summarise(seconds),
		FirstSeconds:    summarise(first),
		CPUPerNodeS:     roundedMedian(cpu, 6),
		BytesPerNodeS:   roundedMedian(bytes, 1),
		PacketsPerNodeS: roundedMedian(packets, 2),
	}
}

func summarise(values []float64) *summary {
	if len(values) == 0 {
		return nil
	}
	sort.Float64s(values)
	return &summary{
		Median: round(median(values), 4),
		Min:    round(values[0], 4),
		Max:    round(values[len(values)-1], 4),
	}
}

func roundedMedian(values []float64, digits int) *float64 {
	if len(values) == 0 {
		return nil
	}
	sort.Float64s(values)
	m := round(median(values), digits)
	return &m
}

// median of sorted values: the middle one, or the mean of the middle two.
func median(values []float64) float64 {
	mid := len(values) / 2
	if len(values)%2 == 1 {
		return values[mid]
	}
	return (values[mid-1] + values[mid]) / 2
}

func round(x float64, digits int) float64 {
	scale := math.Pow(10, float64(digits))
	return math.Round(x*scale) / scale
}
