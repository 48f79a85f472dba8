package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// errBegin is wrapped by the error of a statement that began a unit's
// transaction when the transaction could not begin: no connection, or
// one that broke. The unit's work never ran; the Inbox reports it as
// eventbus.ErrUnavailable.
var errBegin = errors.New("postgres: begin")

// lazyTx is the transaction of a unit of work on a *pgxpool.Pool. It
// begins with the unit's first statement: the connection is acquired and
// BEGIN goes out in the same round trip as that statement
// ([pgx.Batch.BeginTx]), instead of a round trip of its own. A unit that
// runs no statement takes no connection and sends nothing.
//
// Exec (with arguments), Query, QueryRow and SendBatch begin this way.
// The other methods need the transaction first and begin it on its own,
// as [pgxpool.Pool.BeginTx] does; so does an Exec without arguments,
// which pgx sends with the simple protocol (it may hold several
// statements, which a batch may not). Once begun, every method is that
// of the pgx transaction. Like any pgx.Tx it is not safe for concurrent
// use.
//
// Statements whose results the unit does not wait for (a repository's
// save, the writes an inbox or projection batch queued) are held back
// with later: they go out with the unit's next statement's round trip,
// or with its COMMIT, so that a unit that loads, saves and commits takes
// two round trips, and one that only saves takes one.
type lazyTx struct {
	pool *pgxpool.Pool
	// ctx is the unit's: Conn and LargeObjects, which take none, begin
	// the transaction with it.
	ctx  context.Context
	conn *pgxpool.Conn // the connection the transaction runs on, once it began
	tx   pgx.Tx        // the transaction, once it began (or was asked to)
	// held are the statements held back by later, in order, not sent yet.
	held []*pgx.QueuedQuery
	// savepoints counts the savepoints begun (Begin) and not yet ended:
	// while one is open nothing is held back (holding), so that what the
	// unit writes in it is rolled back with it.
	savepoints int
	// escaped is set once the connection was handed out (Conn,
	// LargeObjects): statements sent on it bypass t, so nothing more is
	// held back.
	escaped bool
	// unit is the unit of work t is the transaction of: a savepoint's
	// rollback restores what it records of the saves made since.
	unit *unit
	// err poisons the unit: its transaction could not begin, or its first
	// statement was refused before BEGIN ran. Every later call fails with
	// it, as PostgreSQL refuses the statements of a failed transaction.
	err    error
	closed bool // ended before it began
}

// newLazyTx returns the transaction of a unit run with ctx on pool, not
// yet begun.
func newLazyTx(ctx context.Context, pool *pgxpool.Pool) *lazyTx {
	return &lazyTx{ctx: ctx, pool: pool}
}

// beginBatch returns a batch that begins a unit's transaction, to which
// the unit's first statement is queued.
func beginBatch() *pgx.Batch {
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, beginResults+1)}
	b.BeginTx(pgx.TxOptions{})
	return b
}

// beginResults is the number of results beginBatch queues.
const beginResults = 1

// usable reports why t cannot run a statement, if it cannot.
func (t *lazyTx) usable() error {
	switch {
	case t.closed:
		return pgx.ErrTxClosed
	case t.err == nil, errors.Is(t.err, errBegin):
		return t.err
	default:
		return fmt.Errorf("postgres: unit of work: an earlier statement failed, nothing runs until the unit ends: %w", t.err)
	}
}

// begin begins the transaction on its own, in one round trip, unless it
// has begun.
func (t *lazyTx) begin(ctx context.Context) (pgx.Tx, error) {
	if t.tx != nil {
		return t.tx, nil
	}
	if err := t.usable(); err != nil {
		return nil, err
	}
	if len(t.held) > 0 {
		// BEGIN and the held statements in one round trip.
		if err := t.send(ctx, t.take(beginBatch())).Close(); err != nil {
			return nil, t.fail(err)
		}
		return t.tx, nil
	}
	c, err := t.pool.Acquire(ctx)
	if err != nil {
		t.err = fmt.Errorf("%w: %w", errBegin, err)
		return nil, t.err
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		c.Release()
		t.err = fmt.Errorf("%w: %w", errBegin, err)
		return nil, t.err
	}
	t.conn, t.tx = c, tx
	return tx, nil
}

// send sends b, which beginBatch started, in one round trip, on a
// connection of its own. The results it returns hide those of the begin
// queries.
func (t *lazyTx) send(ctx context.Context, b *pgx.Batch) *begunResults {
	c, err := t.pool.Acquire(ctx)
	if err != nil {
		br := pgx.FailedBatchResults(b, err)
		return &begunResults{t: t, ctx: ctx, br: br, skip: beginResults}
	}
	br := c.SendBatch(ctx, b)
	// The transaction's connection is t.conn, released when it ends.
	t.conn, t.tx = c, br.Tx()
	return &begunResults{t: t, ctx: ctx, br: br, skip: beginResults}
}

// later holds back a statement whose result the unit does not wait for:
// it is sent, in order with the other held ones, before the unit's next
// statement or with its COMMIT. check reads its result from br (as a
// queued query's function does) and returns the error the unit fails
// with; a held statement that fails rolls the unit back, and the
// statement or commit that sent it returns check's error.
func (t *lazyTx) later(sql string, args []any, check func(br pgx.BatchResults) error) {
	t.held = append(t.held, &pgx.QueuedQuery{SQL: sql, Arguments: args, Fn: check})
}

// laterBatch holds back every statement of b (later), failing the unit
// with failed(i, err) for the first that fails, i its index in b.
func (t *lazyTx) laterBatch(b *pgx.Batch, failed func(i int, err error) error) {
	for i, qq := range b.QueuedQueries {
		t.later(qq.SQL, qq.Arguments, func(br pgx.BatchResults) error {
			if _, err := br.Exec(); err != nil {
				return failed(i, err)
			}
			return nil
		})
	}
}

// take appends the held statements to b and forgets them.
func (t *lazyTx) take(b *pgx.Batch) *pgx.Batch {
	b.QueuedQueries = append(b.QueuedQueries, t.held...)
	t.held = nil
	return b
}

// flush sends the held statements, in a round trip of their own, before
// a statement that cannot go out with them.
func (t *lazyTx) flush(ctx context.Context) error {
	if len(t.held) == 0 {
		return nil
	}
	if t.tx == nil {
		_, err := t.begin(ctx)
		return err
	}
	if err := t.tx.SendBatch(ctx, t.take(&pgx.Batch{})).Close(); err != nil {
		return t.fail(err)
	}
	return nil
}

// ready sends the held statements before another statement, and
// reports why that statement cannot run, if it cannot: a held statement
// failed.
func (t *lazyTx) ready(ctx context.Context) error {
	if err := t.flush(ctx); err != nil {
		return err
	}
	if t.tx != nil && t.err != nil {
		return t.usable()
	}
	return nil
}

// fail records that a held statement failed with err: the transaction is
// aborted, and nothing more runs in the unit.
func (t *lazyTx) fail(err error) error {
	if t.err == nil {
		t.err = err
	}
	return err
}

// failed records that the transaction did not begin: err came back for
// the begin queries of br. It closes br, hands the connection back and
// poisons t.
func (t *lazyTx) failed(ctx context.Context, br pgx.BatchResults, err error) error {
	_ = br.Close()
	broken := t.conn == nil || t.conn.Conn().PgConn().IsClosed()
	if t.tx != nil {
		_ = t.tx.Rollback(context.WithoutCancel(ctx))
	}
	t.release()
	t.tx = nil
	var pgErr *pgconn.PgError
	if !broken && errors.As(err, &pgErr) {
		// The server refused a statement of the batch (pgx prepares them
		// all before it runs the first): the statement's own error.
		t.err = err
	} else {
		t.err = fmt.Errorf("%w: %w", errBegin, err)
	}
	return t.err
}

// pipelined reports whether a statement with args can go out with the
// begin queries: pgx options (a query mode, a rewriter such as
// pgx.NamedArgs, result formats) are for a statement of its own.
func pipelined(args []any) bool {
	if len(args) == 0 {
		return true
	}
	switch args[0].(type) {
	case pgx.QueryExecMode, pgx.QueryRewriter, pgx.QueryResultFormats, pgx.QueryResultFormatsByOID:
		return false
	}
	return true
}

func (t *lazyTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := t.ready(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	if t.tx == nil && len(args) > 0 && pipelined(args) {
		if err := t.usable(); err != nil {
			return pgconn.CommandTag{}, err
		}
		b := beginBatch()
		b.Queue(sql, args...)
		br := t.send(ctx, b)
		tag, err := br.Exec()
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		return tag, err
	}
	tx, err := t.begin(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	return tx.Exec(ctx, sql, args...)
}

func (t *lazyTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.ready(ctx); err != nil {
		return failedRows(err)
	}
	if t.tx == nil && pipelined(args) {
		if err := t.usable(); err != nil {
			return failedRows(err)
		}
		b := beginBatch()
		b.Queue(sql, args...)
		br := t.send(ctx, b)
		rows, err := br.Query()
		if err != nil {
			_ = br.Close()
			return rows, err
		}
		return &batchRows{Rows: rows, br: br}, nil
	}
	tx, err := t.begin(ctx)
	if err != nil {
		return failedRows(err)
	}
	return tx.Query(ctx, sql, args...)
}

func (t *lazyTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := t.ready(ctx); err != nil {
		return &firstRow{err: err}
	}
	if t.tx != nil {
		return t.tx.QueryRow(ctx, sql, args...)
	}
	rows, err := t.Query(ctx, sql, args...)
	return &firstRow{rows: rows, err: err}
}

func (t *lazyTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := t.ready(ctx); err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	if t.tx == nil && b.Len() > 0 {
		if err := t.usable(); err != nil {
			return pgx.FailedBatchResults(b, err)
		}
		nb := beginBatch()
		nb.QueuedQueries = append(nb.QueuedQueries, b.QueuedQueries...)
		return t.send(ctx, nb)
	}
	tx, err := t.begin(ctx)
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	return tx.SendBatch(ctx, b)
}

func (t *lazyTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if err := t.ready(ctx); err != nil {
		return 0, err
	}
	tx, err := t.begin(ctx)
	if err != nil {
		return 0, err
	}
	return tx.CopyFrom(ctx, table, columns, src)
}

func (t *lazyTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if err := t.ready(ctx); err != nil {
		return nil, err
	}
	tx, err := t.begin(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Prepare(ctx, name, sql)
}

// Begin begins a savepoint (a pseudo nested transaction), after the
// transaction itself if it has not begun, and after the statements held
// back. Until it ends, the unit holds nothing back.
func (t *lazyTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := t.ready(ctx); err != nil {
		return nil, err
	}
	tx, err := t.begin(ctx)
	if err != nil {
		return nil, err
	}
	sp, err := tx.Begin(ctx)
	return t.unit.savepoint(sp, err)
}

// holding returns q when it is a unit's lazy transaction that may hold a
// statement back now (later), nil otherwise: not while a savepoint is
// open, whose rollback must undo it, nor once the connection was handed
// out, whose statements would not see it.
func holding(q DB) *lazyTx {
	if t, ok := q.(*lazyTx); ok && t.savepoints == 0 && !t.escaped {
		return t
	}
	return nil
}

// savepoint is a savepoint begun on a unit's transaction (or on another
// savepoint of it), open until its Commit or Rollback (or the unit's
// end). Its Rollback undoes, besides the writes, what the unit recorded
// of them: the saves made since it began (so that saving the same
// aggregate again writes it again, and the aggregate is not marked
// committed for a write that was undone), and a failed write since,
// which no longer forces the unit to roll back.
type savepoint struct {
	pgx.Tx
	u     *unit
	mark  unitMark
	ended bool
}

// savepoint wraps sp, a savepoint begun (with err) on u's transaction or
// on one of its savepoints, counting it as open until it ends.
func (u *unit) savepoint(sp pgx.Tx, err error) (pgx.Tx, error) {
	if err != nil {
		return nil, err
	}
	if t, ok := u.tx.(*lazyTx); ok {
		t.savepoints++
	}
	return &savepoint{Tx: sp, u: u, mark: u.mark()}, nil
}

func (s *savepoint) Begin(ctx context.Context) (pgx.Tx, error) {
	sp, err := s.Tx.Begin(ctx)
	return s.u.savepoint(sp, err)
}

func (s *savepoint) Commit(ctx context.Context) error {
	s.end()
	return s.Tx.Commit(ctx)
}

func (s *savepoint) Rollback(ctx context.Context) error {
	if !s.ended {
		s.u.rollbackTo(s.mark)
	}
	s.end()
	return s.Tx.Rollback(ctx)
}

func (s *savepoint) end() {
	if !s.ended {
		s.ended = true
		if t, ok := s.u.tx.(*lazyTx); ok {
			t.savepoints--
		}
	}
}

// unitTx is the transaction of a unit of work that is not a lazyTx (the
// unit runs on a connection or in a caller's transaction): it tracks the
// savepoints begun on it, as a lazyTx does.
type unitTx struct {
	pgx.Tx
	u *unit
}

func (t *unitTx) Begin(ctx context.Context) (pgx.Tx, error) {
	sp, err := t.Tx.Begin(ctx)
	return t.u.savepoint(sp, err)
}

// LargeObjects begins the transaction if it has not begun (with the
// unit's context). When it cannot, the LargeObjects returned fails every
// call with [pgx.ErrTxClosed].
func (t *lazyTx) LargeObjects() pgx.LargeObjects {
	if err := t.ready(t.ctx); err != nil {
		return closedTx().LargeObjects()
	}
	tx, err := t.begin(t.ctx)
	if err != nil {
		return closedTx().LargeObjects()
	}
	t.escaped = true
	return tx.LargeObjects()
}

// Conn begins the transaction if it has not begun (with the unit's
// context), so that statements on the connection run in it, and sends
// the statements held back; from then on the unit holds nothing back.
// It returns nil when the transaction cannot begin.
func (t *lazyTx) Conn() *pgx.Conn {
	if err := t.ready(t.ctx); err != nil {
		return nil
	}
	tx, err := t.begin(t.ctx)
	if err != nil {
		return nil
	}
	t.escaped = true
	return tx.Conn()
}

// Commit commits the transaction and hands its connection back to the
// pool. A transaction that never began has nothing to commit; one whose
// first statement failed commits nothing and returns
// [pgx.ErrTxCommitRollback], as PostgreSQL would.
//
// Statements held back (later) go out with the COMMIT, in its round trip
// (with BEGIN too, when nothing began the transaction). When one of them
// fails, the transaction is rolled back and Commit returns a
// [heldError] with the statement's error.
func (t *lazyTx) Commit(ctx context.Context) error {
	if len(t.held) > 0 && t.err == nil {
		return t.commitHeld(ctx)
	}
	if t.tx != nil {
		defer t.release()
		if t.err != nil {
			// A held statement failed (and the statement that sent it
			// returned its error): the transaction is aborted.
			_ = t.tx.Rollback(ctx)
			return &heldError{err: t.err}
		}
		return t.tx.Commit(ctx)
	}
	if err := t.end(); err != nil {
		return err
	}
	if t.err != nil {
		return fmt.Errorf("%w: %w", pgx.ErrTxCommitRollback, t.err)
	}
	return nil
}

// commitHeld sends the held statements and COMMIT in one round trip.
func (t *lazyTx) commitHeld(ctx context.Context) error {
	var br pgx.BatchResults
	if t.tx == nil {
		b := t.take(beginBatch())
		b.Queue("commit")
		br = t.send(ctx, b)
	} else {
		b := t.take(&pgx.Batch{})
		b.Queue("commit")
		br = t.tx.SendBatch(ctx, b)
	}
	err := br.Close()
	if t.tx == nil { // it did not begin: nothing to end
		t.closed = true
		return err
	}
	defer t.release()
	if c := t.conn.Conn().PgConn(); err != nil && !c.IsClosed() && c.TxStatus() != 'I' {
		// A held statement failed, and the server skipped the COMMIT.
		_ = t.tx.Rollback(context.WithoutCancel(ctx))
		return &heldError{err: err}
	}
	return err
}

// heldError is the error of a statement held back (lazyTx.later) that
// failed when Commit sent it: the unit's error, not the commit's.
type heldError struct{ err error }

func (e *heldError) Error() string { return e.err.Error() }
func (e *heldError) Unwrap() error { return e.err }

// Rollback rolls the transaction back and hands its connection back to
// the pool; before it began, it only ends it. Held statements are
// dropped unsent.
func (t *lazyTx) Rollback(ctx context.Context) error {
	t.held = nil
	if t.tx != nil {
		defer t.release()
		return t.tx.Rollback(ctx)
	}
	return t.end()
}

// release hands the transaction's connection back to the pool (which
// closes it unless the transaction ended), once. The transaction is
// closed from then on: the connection may be in use elsewhere.
func (t *lazyTx) release() {
	if t.conn != nil {
		t.conn.Release()
		t.conn = nil
		t.tx = closedTx()
	}
}

// end ends a transaction that never began, once.
func (t *lazyTx) end() error {
	if t.closed {
		return pgx.ErrTxClosed
	}
	t.closed = true
	return nil
}

var _ pgx.Tx = (*lazyTx)(nil)

// closedTx returns a pgx transaction that is closed: its methods fail
// with [pgx.ErrTxClosed].
func closedTx() pgx.Tx {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	return pgx.FailedBatchResults(b, pgx.ErrTxClosed).Tx()
}

// failedRows returns rows that report err, as pgx's Query does when it
// fails, and err.
func failedRows(err error) (pgx.Rows, error) {
	return pgx.FailedBatchResults(&pgx.Batch{}, err).Query()
}

// begunResults are the results of a batch sent after the begin queries
// (lazyTx.send): it reads and checks those first, and hides them.
type begunResults struct {
	t    *lazyTx
	ctx  context.Context
	br   pgx.BatchResults
	skip int // begin results not read yet
	err  error
}

// begun reads the results of the begin queries, once.
func (r *begunResults) begun() error {
	for r.skip > 0 && r.err == nil {
		r.skip--
		if _, err := r.br.Exec(); err != nil {
			r.err = r.t.failed(r.ctx, r.br, err)
		}
	}
	return r.err
}

func (r *begunResults) Exec() (pgconn.CommandTag, error) {
	if err := r.begun(); err != nil {
		return pgconn.CommandTag{}, err
	}
	return r.br.Exec()
}

func (r *begunResults) Query() (pgx.Rows, error) {
	if err := r.begun(); err != nil {
		return failedRows(err)
	}
	return r.br.Query()
}

func (r *begunResults) QueryRow() pgx.Row {
	if err := r.begun(); err != nil {
		return &firstRow{err: err}
	}
	return r.br.QueryRow()
}

func (r *begunResults) Close() error {
	err := r.begun()
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

// Tx is nil: the caller's batch began no transaction of its own.
func (r *begunResults) Tx() pgx.Tx { return nil }

// batchRows are the rows of a query sent with the begin queries: closing
// them closes the batch too, which frees the connection.
type batchRows struct {
	pgx.Rows
	br   pgx.BatchResults
	err  error
	done bool
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if !r.done {
		r.done = true
		r.err = r.br.Close()
	}
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// firstRow is the pgx.Row of a lazyTx.QueryRow that began the
// transaction: the first row of rows, as pgx's own QueryRow scans it.
type firstRow struct {
	rows pgx.Rows
	err  error // of the query: Scan returns it, rows is not read
}

func (r *firstRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	rows := r.rows
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}
