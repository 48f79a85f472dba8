package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/internal/aggstore"
	"github.com/dddkit/dddkit/outbox"
)

// This file holds the sharded leadership of the outbox relay. Every
// outbox row carries a shard key (a stable hash of its aggregate ID,
// computed by the database: see the migration step outboxShardSQL); its
// shard is shard_key % OutboxConfig.Shards. A relay's Lead session holds
// one connection of its own, the lock connection, on which it holds a
// session-level advisory lock per shard it leads and runs every claim
// (Fetch) and mark (MarkPublished, MarkAttempts) of those shards. A
// statement cannot outlive its session, so once the session is gone
// (killed, timed out, its socket half-open) no claim or mark of its shards
// succeeds: that is the fencing. A second connection only LISTENs.
//
// The relays of one outbox share the shards fairly: each holds a shared
// "member" lock while it runs Lead, so each can count the others, and
// leads at most ceil(shards / members). A relay above its share stops
// claiming rows of its extra shards and unlocks each once none of its
// rows is in flight; one below its share locks free shards. Taking free
// shards is serialised by a transaction-level lock, so two relays never
// judge the same free shard at once; a relay with none to take decides
// without waiting for that lock.

// Defaults and limits of sharding.
const (
	// DefaultShards is the default [OutboxConfig].Shards.
	DefaultShards = 16
	// MaxShards is the largest [OutboxConfig].Shards.
	MaxShards = 4096
	// DefaultLeaderTimeout is the default [OutboxConfig].LeaderTimeout.
	DefaultLeaderTimeout = 10 * time.Second
)

// ErrNotLeader is wrapped by the errors of [Outbox.Fetch],
// [Outbox.MarkPublished] and [Outbox.MarkAttempts] when this Outbox does
// not hold the locks of the rows' shards: called outside [Outbox.Lead],
// after the lock session ended (a relay that lost its locks claims and
// marks nothing more), or for rows this session did not fetch.
var ErrNotLeader = errors.New("postgres: outbox: this relay does not lead the shard")

// Leader is a relay session on an outbox, as [Outbox.Leaders] reports it.
type Leader struct {
	// PID is the PostgreSQL backend process ID of its lock connection
	// (pg_stat_activity.pid): pg_terminate_backend(PID) ends its
	// leadership.
	PID int
	// ShardCount is the number of shards the relay was configured with
	// ([OutboxConfig].Shards).
	ShardCount int
	// Shards are the shards it leads, in increasing order; empty while it
	// waits for a share.
	Shards []int
	// ApplicationName and ClientAddr say where the relay runs, as far as
	// its connection tells (application_name is set by the pool's
	// connection string; ClientAddr is empty for Unix sockets).
	ApplicationName, ClientAddr string
	// Since is when its lock session started (backend_start).
	Since time.Time
}

// shardKeys are the first keys of the two-key advisory locks of one
// outbox table: (shard, s) is the lock of shard s; (member, n) the shared
// lock every relay configured with n shards holds while it runs Lead;
// (member, -1) the transaction lock that serialises lock changes.
type shardKeys struct{ shard, member int32 }

func newShardKeys(schema, table string) shardKeys {
	return shardKeys{
		shard:  int32(hash64("dddkit/outbox/shard/"+schema+"."+table) & 0x7fffffff),
		member: int32(hash64("dddkit/outbox/member/"+schema+"."+table) & 0x7fffffff),
	}
}

// lockStateSQL lists the advisory locks of one outbox table held in this
// database: (pid, first key, second key). Two-key advisory locks show their
// keys as classid and objid, with objsubid 2.
const lockStateSQL = `SELECT l.pid, l.classid::int8, l.objid::int8 FROM pg_locks l
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
	AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
	AND l.classid::int8 IN ($1::int8, $2::int8)`

// lockState is what lockStateSQL found.
type lockState struct {
	members map[uint32]int // pid → its number of shards
	holders map[int]uint32 // shard → pid
}

func readLockState(ctx context.Context, q DB, keys shardKeys) (lockState, error) {
	st := lockState{members: map[uint32]int{}, holders: map[int]uint32{}}
	rows, err := q.Query(ctx, lockStateSQL, keys.shard, keys.member)
	if err != nil {
		return st, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			pid         uint32
			first, objv int64
		)
		if err := rows.Scan(&pid, &first, &objv); err != nil {
			return st, err
		}
		switch {
		case first == int64(keys.member) && objv > 0 && objv <= MaxShards:
			st.members[pid] = int(objv)
		case first == int64(keys.shard) && objv < MaxShards:
			st.holders[int(objv)] = pid
		}
	}
	return st, rows.Err()
}

// Leaders lists the relay sessions on this outbox across every process
// (from PostgreSQL's lock table): each one's backend PID, its number of
// shards and the shards it leads. A relay waiting for a share is listed
// with no shard. For operators and tests: which process relays what.
func (o *Outbox) Leaders(ctx context.Context) ([]Leader, error) {
	r, err := o.resolve(ctx)
	if err != nil {
		return nil, err
	}
	st, err := readLockState(ctx, o.db, r.keys)
	if err != nil {
		return nil, fmt.Errorf("postgres: outbox: read the relays' locks: %w", err)
	}
	byPID := map[uint32]*Leader{}
	get := func(pid uint32) *Leader {
		l := byPID[pid]
		if l == nil {
			l = &Leader{PID: int(pid)}
			byPID[pid] = l
		}
		return l
	}
	for pid, n := range st.members {
		get(pid).ShardCount = n
	}
	for s, pid := range st.holders {
		l := get(pid)
		l.Shards = append(l.Shards, s)
	}
	out := make([]Leader, 0, len(byPID))
	for _, l := range byPID {
		slices.Sort(l.Shards)
		out = append(out, *l)
	}
	slices.SortFunc(out, func(a, b Leader) int { return a.PID - b.PID })
	if err := sessionInfo(ctx, o.db, out); err != nil {
		return nil, fmt.Errorf("postgres: outbox: read the relays' sessions: %w", err)
	}
	return out, nil
}

// sessionInfo fills in where each leader's session runs, from
// pg_stat_activity.
func sessionInfo(ctx context.Context, db DB, leaders []Leader) error {
	if len(leaders) == 0 {
		return nil
	}
	pids := make([]int32, len(leaders))
	for i, l := range leaders {
		pids[i] = int32(l.PID) //nolint:gosec // backend PIDs fit in int32
	}
	rows, err := db.Query(ctx, `SELECT pid, coalesce(application_name, ''), coalesce(host(client_addr), ''), backend_start
FROM pg_stat_activity WHERE pid = ANY($1)`, pids)
	if err != nil {
		return err
	}
	defer rows.Close()
	byPID := make(map[int]*Leader, len(leaders))
	for i := range leaders {
		byPID[leaders[i].PID] = &leaders[i]
	}
	for rows.Next() {
		var (
			pid       int32
			app, addr string
			since     *time.Time
		)
		if err := rows.Scan(&pid, &app, &addr, &since); err != nil {
			return err
		}
		if l := byPID[int(pid)]; l != nil {
			l.ApplicationName, l.ClientAddr = app, addr
			if since != nil {
				l.Since = *since
			}
		}
	}
	return rows.Err()
}

// Shards returns the shards this Outbox's relay leads now, in increasing
// order; nil when it does not lead.
func (o *Outbox) Shards() []int {
	s := o.sess.Load()
	if s == nil {
		return nil
	}
	if led := s.leading.Load(); led != nil {
		return slices.Clone(*led)
	}
	return nil
}

// session returns the running Lead session, or an error wrapping
// ErrNotLeader.
func (o *Outbox) session(what string) (*leadSession, error) {
	s := o.sess.Load()
	if s == nil {
		return nil, fmt.Errorf("%w: %s outside Lead", ErrNotLeader, what)
	}
	return s, nil
}

// leadSession is one Lead of an Outbox: its lock connection and the
// shards it holds there.
type leadSession struct {
	o    *Outbox
	r    *resolvedOutbox
	n    int // shards
	conn *pgx.Conn
	pid  uint32

	mu       sync.Mutex       // one statement at a time on conn; guards what follows
	led      []bool           // by shard: its lock is held
	count    int              // shards led
	draining []time.Time      // by shard: since when it drains (zero: it does not)
	rested   []time.Time      // by shard: when it last stopped draining without being released
	busy     []int            // by shard: rows handed out by Fetch, not yet marked
	orders   []int32          // by shard order: rows handed out by Fetch, not yet marked (lanes)
	lane     int              // the lane an alone fetch reads first (lanes)
	out      map[int64]handed // seq → the rows handed out
	fetched  int              // rows the last fetch returned: the next one's room
	window   windowScratch    // reused by each fetch beside batches in flight (window.go)
	lost     error            // set once the session is unusable
	ended    bool             // lost because Lead returned (end)
	onLost   func(error)

	leading atomic.Pointer[[]int] // the led shards, for readers that must not wait for mu; nil once lost
	wake    chan struct{}         // wakes the relay (Lead's fn)
	poke    chan struct{}         // rebalances now: a relay joined or handed shards over (rebalanceNotice)
}

// rebalanceNotice is the payload of the NOTIFY, on the outbox's channel,
// by which a relay tells the others that it joined (one above its share
// starts handing shards over) or handed shards over (one below takes
// them), so that they rebalance at once instead of at their next
// LeaderPollInterval. The outbox's writers notify with an empty payload.
const rebalanceNotice = "dddkit:rebalance"

// wakeIfLeadingAll wakes the session's relay, without waiting, if the
// session leads every shard, and reports whether it did. Then no relay
// of another session can read a row of the outbox (the advisory locks
// keep them out), so a NOTIFY would only wake this one. A session that
// lost a lock without knowing it yet (see the fencing above) wakes a
// relay whose claims of that shard fail, and the new leader reads the
// rows when it takes the shard and every PollInterval.
func (s *leadSession) wakeIfLeadingAll() bool {
	if led := s.leading.Load(); led == nil || len(*led) != s.n {
		return false
	}
	select {
	case s.wake <- struct{}{}:
	default: // a wake is pending: the relay will read this write too
	}
	return true
}

func newLeadSession(o *Outbox, r *resolvedOutbox, conn *pgx.Conn) *leadSession {
	n := o.cfg.Shards
	return &leadSession{
		o: o, r: r, n: n, conn: conn, pid: conn.PgConn().PID(),
		led: make([]bool, n), draining: make([]time.Time, n), rested: make([]time.Time, n), busy: make([]int, n),
		orders: make([]int32, 1<<shardOrderBits),
		out:    map[int64]handed{}, wake: make(chan struct{}, 1), poke: make(chan struct{}, 1),
	}
}

// ledShards returns the led shards; s.mu held.
func (s *leadSession) ledShards() []int {
	out := make([]int, 0, s.count)
	for i, l := range s.led {
		if l {
			out = append(out, i)
		}
	}
	return out
}

// publish makes the led shards visible to Shards; s.mu held.
func (s *leadSession) publish() {
	led := s.ledShards()
	s.leading.Store(&led)
}

// leads reports whether the session leads shard sh, without waiting for
// a statement in progress.
func (s *leadSession) leads(sh int) bool {
	led := s.leading.Load()
	return led != nil && slices.Contains(*led, sh)
}

// shards returns the led shards.
func (s *leadSession) shards() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ledShards()
}

// end makes every later call of the session fail: Lead returned.
func (s *leadSession) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost == nil {
		s.lost = fmt.Errorf("%w: the Lead session ended", ErrNotLeader)
		s.ended = true
		s.leading.Store(nil)
	}
}

// leave releases the session's locks and tells the other relays
// (rebalanceNotice), so that they take its shards at once, before Lead
// closes the lock connection (which would release them too, unnoticed
// until the others' next LeaderPollInterval). Nothing of the session is
// in flight any more; a session that was lost leaves it to the close.
func (s *leadSession) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost != nil && !s.ended {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = s.conn.Exec(ctx, `SELECT pg_advisory_unlock_all(), pg_notify($1, $2)`, s.r.channel, rebalanceNotice)
}

// claimable returns the led shards that are not draining, and whether
// that is every shard; s.mu held.
func (s *leadSession) claimable() (shards []int32, all bool) {
	for i, l := range s.led {
		if l && s.draining[i].IsZero() {
			shards = append(shards, int32(i))
		}
	}
	return shards, len(shards) == s.n
}

// fail ends the session: every later call fails with ErrNotLeader and
// Lead's fn sees its context end. s.mu held.
func (s *leadSession) fail(err error) error {
	if s.lost == nil {
		s.lost = fmt.Errorf("%w: %w", ErrNotLeader, err)
		s.leading.Store(nil)
		s.o.log.Warn("postgres: outbox relay lost its shards", "table", s.r.qtable, "error", err)
		if s.onLost != nil {
			s.onLost(s.lost)
		}
	}
	return s.lost
}

// do runs fn on the lock connection, bounded by LeaderTimeout. An error
// that leaves the connection unusable (pgx closes it on a network error
// and on a timeout) ends the session. s.mu held.
func (s *leadSession) do(ctx context.Context, fn func(ctx context.Context, c *pgx.Conn) error) error {
	if s.lost != nil {
		return s.lost
	}
	cctx, cancel := context.WithTimeout(ctx, s.o.cfg.LeaderTimeout)
	defer cancel()
	err := fn(cctx, s.conn)
	if err == nil {
		return nil
	}
	if s.conn.IsClosed() || cctx.Err() != nil {
		if cctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("the lock connection did not answer within LeaderTimeout (%s): %w", s.o.cfg.LeaderTimeout, err)
		}
		return s.fail(err)
	}
	return err
}

// handed is a row Fetch handed out: its shard and its aggregate.
type handed struct {
	shard, key int32 // key: its shard_key
	agg        aggstore.Key
}

// handOut records a row Fetch returns as in flight; s.mu held.
func (s *leadSession) handOut(p *outbox.Pending, shardKey int32) {
	if _, ok := s.out[p.Seq]; ok {
		return // fetched again: its first fetch was abandoned
	}
	sh := shardKey % int32(s.n)
	s.out[p.Seq] = handed{shard: sh, key: shardKey, agg: aggstore.KeyOf(&p.Event)}
	s.busy[sh]++
	s.orders[shardOrderOf(shardKey)]++
}

// orderRange is the range of the shard orders of the rows seqs, which
// this session handed out; s.mu held.
func (s *leadSession) orderRange(seqs []int64) (lo, hi int32) {
	lo, hi = 1<<shardOrderBits-1, 0
	for _, q := range seqs {
		o := shardOrderOf(s.out[q].key)
		lo, hi = min(lo, o), max(hi, o)
	}
	return lo, hi
}

// owns checks that every seq was handed out by this session; s.mu held.
func (s *leadSession) owns(seqs []int64) error {
	for _, q := range seqs {
		if _, ok := s.out[q]; !ok {
			return fmt.Errorf("%w: row %d was not fetched by this relay session", ErrNotLeader, q)
		}
	}
	return nil
}

// settle forgets marked rows and unlocks the draining shards that no
// longer have a row in flight; s.mu held.
func (s *leadSession) settle(ctx context.Context, seqs []int64) error {
	for _, q := range seqs {
		if h, ok := s.out[q]; ok {
			delete(s.out, q)
			s.busy[h.shard]--
			s.orders[shardOrderOf(h.key)]--
		}
	}
	return s.releaseIdle(ctx)
}

// releaseIdle unlocks the draining shards without a row in flight; s.mu
// held.
func (s *leadSession) releaseIdle(ctx context.Context) error {
	var idle []int32
	for i, l := range s.led {
		if l && !s.draining[i].IsZero() && s.busy[i] == 0 {
			idle = append(idle, int32(i))
		}
	}
	if len(idle) == 0 {
		return nil
	}
	return s.do(ctx, func(ctx context.Context, c *pgx.Conn) error {
		var unlocked int
		if err := c.QueryRow(ctx, `SELECT (SELECT count(*) FILTER (WHERE pg_advisory_unlock($1, s)) FROM unnest($2::int4[]) s), pg_notify($3, $4)`,
			s.r.keys.shard, idle, s.r.channel, rebalanceNotice).Scan(&unlocked, nil); err != nil {
			return err
		}
		if unlocked != len(idle) {
			return fmt.Errorf("%d of the locks of shards %v were not held", len(idle)-unlocked, idle)
		}
		for _, sh := range idle {
			s.led[sh], s.draining[sh] = false, time.Time{}
			s.count--
		}
		s.publish()
		s.o.log.Info("postgres: outbox relay handed shards over", "table", s.r.qtable, "released", idle, "leads", s.ledShards())
		return nil
	})
}

// join prepares the lock connection: bounded keepalives on both ends,
// the planner settings of the relay's statements (leadPlannerSQL) and
// the shared member lock, and tells the other relays (rebalanceNotice).
func (s *leadSession) join(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.do(ctx, func(ctx context.Context, c *pgx.Conn) error {
		if err := bound(ctx, c, s.o.cfg.LeaderTimeout); err != nil {
			return err
		}
		if _, err := c.Exec(ctx, leadPlannerSQL); err != nil {
			return err
		}
		_, err := c.Exec(ctx, `SELECT pg_advisory_lock_shared($1, $2), pg_notify($3, $4)`, s.r.keys.member, int32(s.n), s.r.channel, rebalanceNotice)
		return err
	})
}

// leadPlannerSQL sets the planner of the lock connection, where the
// relay fetches and marks, for a backlog it has no statistics of. Its
// statements are prepared, and run on a plan made once; on an outbox
// whose statistics predate its backlog (a new table, a burst before
// autovacuum analyzed it), that plan takes the table for a few pages:
//   - a Fetch read and sorted every pending row instead of walking the
//     pending index in sequence order until the batch is full (42 ms
//     for a backlog of 17,300 rows, against 5 ms, growing with it);
//   - its blocked check scanned the whole table for every candidate row
//     instead of looking it up in the blocked index, and the marks
//     scanned it for their rows (a 1,500-row Fetch beside batches in
//     flight on a 20,000-row outbox took 8.3 s).
//
// Without sorts and sequential scans, the index walks are the only cheap
// plans (every statement of the lock connection has one). JIT, which
// the cost of such a plan would start, costs far more than these
// statements (0.7 s measured).
const leadPlannerSQL = `SELECT set_config('enable_sort', 'off', false), set_config('enable_seqscan', 'off', false), set_config('jit', 'off', false)`

// rebalance takes this session toward its fair share of the shards:
// ceil(shards / relays). It reports whether the led shards changed.
//
// It reads the relays' locks first without waiting for the others: when
// this session has no free shard to take (the steady state), that read
// decides, and fetches and marks wait for one statement only. Taking
// free shards is serialised by a transaction-level lock, under which it
// reads and judges again, so two relays never take the same shard.
func (s *leadSession) rebalance(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.count
	var changed bool
	err := s.do(ctx, func(ctx context.Context, c *pgx.Conn) error {
		p, err := s.plan(ctx, c)
		if err != nil {
			return err
		}
		if len(p.take) == 0 {
			s.apply(p)
			return nil
		}
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, -1)`, s.r.keys.member); err != nil {
			return err
		}
		if p, err = s.plan(ctx, tx); err != nil {
			return err
		}
		s.apply(p)
		if len(p.take) > 0 {
			rows, err := tx.Query(ctx, `SELECT s FROM unnest($2::int4[]) s WHERE pg_try_advisory_lock($1, s)`, s.r.keys.shard, p.take)
			if err != nil {
				return err
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[int32])
			if err != nil {
				return err
			}
			for _, sh := range got {
				s.led[sh] = true
				s.count++
			}
			s.publish()
			changed = len(got) > 0
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		return false, err
	}
	if err := s.releaseIdle(ctx); err != nil {
		return false, err
	}
	if changed || s.count != before {
		s.o.log.Info("postgres: outbox relay shards changed", "table", s.r.qtable, "leads", s.ledShards())
		return true, nil
	}
	return false, nil
}

// plan reads the relays' locks through q and plans this session's share;
// it fails if a lock the session holds is gone. s.mu held.
func (s *leadSession) plan(ctx context.Context, q DB) (shardPlan, error) {
	st, err := readLockState(ctx, q, s.r.keys)
	if err != nil {
		return shardPlan{}, err
	}
	for i, l := range s.led {
		if l && st.holders[i] != s.pid {
			return shardPlan{}, errLockVanished(i)
		}
	}
	return planShards(s.n, s.pid, st, s.led), nil
}

// apply starts draining the shards p drops, or keeps every led shard
// when p drops none; s.mu held.
func (s *leadSession) apply(p shardPlan) {
	if p.drop > 0 {
		s.drain(p.drop, time.Now())
		return
	}
	for i := range s.draining {
		s.draining[i] = time.Time{} // back within the share: keep them
	}
}

type errLockVanished int

func (e errLockVanished) Error() string {
	return "the lock of shard " + strconv.Itoa(int(e)) + " is no longer held by this session"
}

// drain marks drop led shards (those already draining first) as draining:
// Fetch claims no more of their rows, and each is unlocked once none of
// its rows is in flight. A shard that stays busy for LeaderTimeout (rows
// abandoned by a batch that the relay gave up) is claimed again for
// another LeaderTimeout, so that its rows are fetched, published and
// marked, before it drains afresh. s.mu held.
func (s *leadSession) drain(drop int, now time.Time) {
	t := s.o.cfg.LeaderTimeout
	for i := range s.draining {
		if !s.draining[i].IsZero() {
			if now.Sub(s.draining[i]) > t {
				s.draining[i], s.rested[i] = time.Time{}, now
				continue
			}
			drop--
		}
	}
	pick := func(idle bool) { // the last shards in the order of shardAt first
		for k := len(s.led) - 1; k >= 0 && drop > 0; k-- {
			i := shardAt(s.n, k)
			if s.led[i] && s.draining[i].IsZero() && now.Sub(s.rested[i]) > t && (!idle || s.busy[i] == 0) {
				s.draining[i] = now
				drop--
			}
		}
	}
	pick(true)
	pick(false)
}

// shardPlan is what one rebalance does: shards to try to lock, and how
// many led shards to give up.
type shardPlan struct {
	take []int32
	drop int
}

// planShards computes this relay's move (pid me, n shards, led) toward a
// fair share of the shards among the relays configured like it: at most
// ceil(n / relays). It takes no shard while another relay configured with
// another number of shards holds one (the two would disagree on which
// rows a shard has): relays with a new number of shards wait until those
// with the old one stop.
func planShards(n int, me uint32, st lockState, led []bool) shardPlan {
	relays := 0
	for _, m := range st.members {
		if m == n {
			relays++
		}
	}
	relays = max(relays, 1)
	fair := (n + relays - 1) / relays
	mine := 0
	for _, l := range led {
		if l {
			mine++
		}
	}
	if mine > fair {
		return shardPlan{drop: mine - fair}
	}
	for _, pid := range st.holders {
		if pid != me && st.members[pid] != n {
			return shardPlan{}
		}
	}
	want := fair - mine
	var p shardPlan
	// The free shards first in the order of shardAt: a relay's shards
	// are then one range of shard orders, read in the pending index.
	for k := 0; k < n && len(p.take) < want; k++ {
		sh := shardAt(n, k)
		if _, held := st.holders[sh]; !held {
			p.take = append(p.take, int32(sh))
		}
	}
	return p
}

// bound limits how long the lock connection can stay silent unnoticed,
// on both ends: on this side TCP keepalives (idle connection) and
// TCP_USER_TIMEOUT (unacknowledged writes, Linux); on the server's side
// the same, so that PostgreSQL ends the session, releasing its locks, when
// this process vanishes behind a dead network.
func bound(ctx context.Context, c *pgx.Conn, timeout time.Duration) error {
	idle, interval := max(timeout/3, time.Second), max(timeout/6, time.Second)
	nc := c.PgConn().Conn()
	if u, ok := nc.(interface{ NetConn() net.Conn }); ok { // TLS
		nc = u.NetConn()
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		if err := tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: idle, Interval: interval, Count: 2}); err != nil {
			return err
		}
		if err := setTCPUserTimeout(tc, timeout); err != nil {
			return err
		}
	}
	// Settable by any user; ignored by the server on a Unix socket.
	_, err := c.Exec(ctx, `SELECT set_config('tcp_keepalives_idle', $1, false), set_config('tcp_keepalives_interval', $2, false),
	set_config('tcp_keepalives_count', '2', false), set_config('tcp_user_timeout', $3, false)`,
		strconv.Itoa(int(idle/time.Second)), strconv.Itoa(int(interval/time.Second)), strconv.FormatInt(max(timeout.Milliseconds(), 1), 10))
	return err
}
