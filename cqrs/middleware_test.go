package cqrs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/retry"
	"github.com/dddkit/dddkit/valueobject"
)

var retryPolicyFast = retry.Policy{BaseDelay: time.Microsecond}

// recorder collects the steps of a dispatch.
type recorder struct {
	mu    sync.Mutex
	steps []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, s)
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.steps...)
}

func (r *recorder) middleware(name string) cqrs.Middleware {
	return func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(ctx context.Context, msg cqrs.Message) (any, error) {
			r.add(name + ">")
			res, err := next(ctx, msg)
			r.add("<" + name)
			return res, err
		}
	}
}

func TestMiddlewareOrderFirstIsOutermost(t *testing.T) {
	t.Parallel()
	var rec recorder
	bus := newBus(t, &cqrs.Config{
		CommandMiddleware: []cqrs.Middleware{rec.middleware("a"), rec.middleware("b"), rec.middleware("c")},
		QueryMiddleware:   []cqrs.Middleware{rec.middleware("q")},
	})
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, RegisterUser) (UserID, error) {
		rec.add("handler")
		return "id", nil
	}))
	require.NoError(t, cqrs.HandleQuery(bus, func(context.Context, GetUser) (UserView, error) {
		rec.add("query")
		return UserView{}, nil
	}))

	id, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{})
	require.NoError(t, err)
	require.Equal(t, UserID("id"), id)
	require.Equal(t, []string{"a>", "b>", "c>", "handler", "<c", "<b", "<a"}, rec.get())

	rec = recorder{}
	_, err = cqrs.Ask[UserView](context.Background(), bus, GetUser{})
	require.NoError(t, err)
	require.Equal(t, []string{"q>", "query", "<q"}, rec.get(), "query middleware only, no command middleware")
}

func TestMiddlewareSeesMessage(t *testing.T) {
	t.Parallel()
	var cmd, query cqrs.Message
	bus := newBus(t, &cqrs.Config{
		CommandMiddleware: []cqrs.Middleware{spy(&cmd)},
		QueryMiddleware:   []cqrs.Middleware{spy(&query)},
	})
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, VerifyEmail) (struct{}, error) { return struct{}{}, nil }))
	require.NoError(t, cqrs.HandleQuery(bus, func(context.Context, GetUser) (UserView, error) { return UserView{}, nil }))

	_, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{Email: "ada"})
	require.NoError(t, err)
	require.Equal(t, cqrs.Message{Kind: cqrs.KindCommand, Name: "user.register", Payload: RegisterUser{Email: "ada"}}, cmd)

	require.NoError(t, cqrs.Exec(context.Background(), bus, VerifyEmail{ID: "u1"}))
	require.Equal(t, cqrs.Message{Kind: cqrs.KindCommand, Name: "cqrs_test.VerifyEmail", Payload: VerifyEmail{ID: "u1"}}, cmd)

	_, err = cqrs.Ask[UserView](context.Background(), bus, GetUser{ID: "u1"})
	require.NoError(t, err)
	require.Equal(t, cqrs.Message{Kind: cqrs.KindQuery, Name: "user.get", Payload: GetUser{ID: "u1"}}, query)
	require.Equal(t, "command", cqrs.KindCommand.String())
	require.Equal(t, "query", cqrs.KindQuery.String())
}

func TestMiddlewareCanShortCircuitAndRewrite(t *testing.T) {
	t.Parallel()
	denied := errors.New("denied")
	deny := func(cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(context.Context, cqrs.Message) (any, error) { return nil, denied }
	}
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{deny}})
	called := false
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, RegisterUser) (UserID, error) {
		called = true
		return "id", nil
	}))
	id, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{})
	require.Same(t, denied, err)
	require.Empty(t, id, "a nil result becomes the zero value")
	require.False(t, called)

	rewrite := func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(ctx context.Context, msg cqrs.Message) (any, error) {
			msg.Payload = RegisterUser{Email: strings.ToLower(msg.Payload.(RegisterUser).Email)}
			return next(ctx, msg)
		}
	}
	bus = newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{rewrite}})
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	id, err = cqrs.Send[UserID](context.Background(), bus, RegisterUser{Email: "ADA"})
	require.NoError(t, err)
	require.Equal(t, UserID("id-ada"), id)
}

func TestMiddlewareBreakingTypesGivesErrors(t *testing.T) {
	t.Parallel()
	wrongResult := func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(ctx context.Context, msg cqrs.Message) (any, error) {
			_, err := next(ctx, msg)
			return 42, err
		}
	}
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{wrongResult}})
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	_, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{})
	require.ErrorIs(t, err, cqrs.ErrResultType)
	require.EqualError(t, err, "cqrs: result type mismatch for command user.register: a middleware returned int, want cqrs_test.UserID")

	wrongPayload := func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(ctx context.Context, msg cqrs.Message) (any, error) {
			msg.Payload = "not a command"
			return next(ctx, msg)
		}
	}
	bus = newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{wrongPayload}})
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	_, err = cqrs.Send[UserID](context.Background(), bus, RegisterUser{})
	require.EqualError(t, err, "cqrs: command user.register: a middleware passed a payload of type string, want cqrs_test.RegisterUser")
}

func TestValidation(t *testing.T) {
	t.Parallel()
	bus := newBus(t, &cqrs.Config{
		CommandMiddleware: []cqrs.Middleware{cqrs.Validation()},
		QueryMiddleware:   []cqrs.Middleware{cqrs.Validation()},
	})
	calls := 0
	require.NoError(t, cqrs.HandleCommand(bus, func(_ context.Context, c RegisterUser) (UserID, error) {
		calls++
		return UserID(c.Email), nil
	}))
	require.NoError(t, cqrs.HandleQuery(bus, func(context.Context, GetUser) (UserView, error) { return UserView{ID: "u"}, nil }))

	_, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{})
	require.ErrorIs(t, err, cqrs.ErrValidation)
	var fe *FieldError
	require.ErrorAs(t, err, &fe, "the error Validate returned is reachable")
	require.Equal(t, "email", fe.Field)
	var ve *cqrs.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, cqrs.KindCommand, ve.Kind)
	require.Equal(t, "user.register", ve.Name)
	require.EqualError(t, err, "cqrs: invalid command user.register: email is required")
	require.Zero(t, calls, "the handler does not run")

	id, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{Email: "ada"})
	require.NoError(t, err)
	require.Equal(t, UserID("ada"), id)
	require.Equal(t, 1, calls)

	view, err := cqrs.Ask[UserView](context.Background(), bus, GetUser{})
	require.NoError(t, err, "a payload without Validate passes")
	require.Equal(t, UserID("u"), view.ID)
}

func TestRecover(t *testing.T) {
	t.Parallel()
	cause := errors.New("cause")
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Recover()}})
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, RegisterUser) (UserID, error) { panic("boom") }))
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, VerifyEmail) (int, error) { panic(cause) }))

	var id UserID
	var err error
	require.NotPanics(t, func() { id, err = cqrs.Send[UserID](context.Background(), bus, RegisterUser{}) })
	require.Empty(t, id)
	require.ErrorIs(t, err, cqrs.ErrPanic)
	var pe *cqrs.PanicError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "boom", pe.Value)
	require.Equal(t, "user.register", pe.Name)
	require.Contains(t, pe.Stack, "middleware_test.go", "the stack points at the panicking code")
	require.EqualError(t, err, "cqrs: command user.register panicked: boom")

	err = cqrs.Exec(context.Background(), bus, VerifyEmail{})
	require.ErrorIs(t, err, cqrs.ErrPanic)
	require.ErrorIs(t, err, cause, "a panic with an error unwraps to it")
}

// logLines parses the JSON lines in buf, dropping time and duration.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		require.Contains(t, m, "duration")
		delete(m, "time")
		delete(m, "duration")
		lines = append(lines, m)
	}
	return lines
}

func TestLogging(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bus := newBus(t, &cqrs.Config{
		CommandMiddleware: []cqrs.Middleware{cqrs.Logging(logger), cqrs.Validation()},
		QueryMiddleware:   []cqrs.Middleware{cqrs.Logging(logger)},
	})
	boom := errors.New("boom")
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	require.NoError(t, cqrs.HandleQuery(bus, func(context.Context, GetUser) (UserView, error) { return UserView{}, boom }))

	_, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{Email: "a"})
	require.NoError(t, err)
	_, err = cqrs.Send[UserID](context.Background(), bus, RegisterUser{})
	require.Error(t, err)
	_, err = cqrs.Ask[UserView](context.Background(), bus, GetUser{})
	require.Error(t, err)

	require.Equal(t, []map[string]any{
		{"level": "DEBUG", "msg": "cqrs: command handled", "kind": "command", "name": "user.register"},
		{"level": "INFO", "msg": "cqrs: command refused", "kind": "command", "name": "user.register", "error": "cqrs: invalid command user.register: email is required"},
		{"level": "ERROR", "msg": "cqrs: query failed", "kind": "query", "name": "user.get", "error": "boom"},
	}, logLines(t, &buf))
}

// shipped is a domain error that declares itself a refusal without
// importing cqrs.
type shipped struct{ order string }

func (e *shipped) Error() string { return "order " + e.order + " is shipped and cannot be cancelled" }
func (e *shipped) Refusal() bool { return true }

// mustExist marks a wrapped not-found as a failure: the row had to be
// there.
type mustExist struct{ err error }

func (e *mustExist) Error() string { return "config row missing: " + e.err.Error() }
func (e *mustExist) Unwrap() error { return e.err }
func (e *mustExist) Refusal() bool { return false }

func TestLoggingLevelFollowsTheOutcome(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Logging(logger), cqrs.Recover()}})
	var next error
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, VerifyEmail) (struct{}, error) {
		if next == nil {
			panic("bug")
		}
		return struct{}{}, next
	}))
	cases := []struct {
		err   error
		level string
		msg   string
	}{
		{cqrs.Refuse(errors.New("cannot cancel")), "INFO", "cqrs: command refused"},
		{fmt.Errorf("cancel: %w", &shipped{"o1"}), "INFO", "cqrs: command refused"},
		{fmt.Errorf("load: %w", aggregate.ErrNotFound), "INFO", "cqrs: command refused"},
		{aggregate.ErrAlreadyExists, "INFO", "cqrs: command refused"},
		{&mustExist{aggregate.ErrNotFound}, "ERROR", "cqrs: command failed"},
		{conflict(), "WARN", "cqrs: command failed"},
		{errors.New("connection refused"), "ERROR", "cqrs: command failed"},
		{nil, "ERROR", "cqrs: command failed"}, // the handler panics
	}
	for _, c := range cases {
		next = c.err
		require.Error(t, cqrs.Exec(context.Background(), bus, VerifyEmail{}))
	}
	lines := logLines(t, &buf)
	require.Len(t, lines, len(cases))
	for i, c := range cases {
		require.Equal(t, c.level, lines[i]["level"], "case %d: %v", i, c.err)
		require.Equal(t, c.msg, lines[i]["msg"], "case %d: %v", i, c.err)
	}
}

func TestLoggingLeavesThePayloadOut(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Logging(logger)}})
	require.NoError(t, cqrs.HandleCommand(bus, func(_ context.Context, c RegisterUser) (UserID, error) {
		if c.Email == "taken@example.com" {
			return "", cqrs.Refuse(errors.New("email address is already registered"))
		}
		return "u1", nil
	}))
	_, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{Email: "ada@example.com"})
	require.NoError(t, err)
	_, err = cqrs.Send[UserID](context.Background(), bus, RegisterUser{Email: "taken@example.com"})
	require.Error(t, err)
	require.Len(t, logLines(t, &buf), 2)
	require.NotContains(t, buf.String(), "example.com", "no field of the command is logged")
}

func TestRefuse(t *testing.T) {
	t.Parallel()
	require.NoError(t, cqrs.Refuse(nil))
	cause := &shipped{"o1"}
	err := cqrs.Refuse(cause)
	require.EqualError(t, err, cause.Error())
	require.ErrorIs(t, err, cause)
	var s *shipped
	require.ErrorAs(t, err, &s)
	require.True(t, cqrs.IsRefusal(err))
	require.True(t, cqrs.IsRefusal(fmt.Errorf("wrapped: %w", cqrs.Refuse(errors.New("no")))))
	require.True(t, cqrs.IsRefusal(errors.Join(errors.New("x"), cqrs.Refuse(errors.New("no")))))
}

func TestIsRefusal(t *testing.T) {
	t.Parallel()
	require.False(t, cqrs.IsRefusal(nil))
	require.False(t, cqrs.IsRefusal(errors.New("boom")))
	require.False(t, cqrs.IsRefusal(conflict()), "a conflict is retried, not refused")
	require.False(t, cqrs.IsRefusal(&cqrs.PanicError{Value: "x"}))
	require.True(t, cqrs.IsRefusal(&cqrs.ValidationError{Err: errors.New("bad")}))
	require.True(t, cqrs.IsRefusal(aggregate.ErrNotFound))
	require.True(t, cqrs.IsRefusal(fmt.Errorf("load u1: %w", aggregate.ErrAlreadyExists)))
	require.False(t, cqrs.IsRefusal(&mustExist{aggregate.ErrNotFound}), "the outermost opinion wins")
	require.True(t, cqrs.IsRefusal(&shipped{"o1"}))
	_, emailErr := valueobject.ParseEmail("not-an-email")
	require.Error(t, emailErr)
	require.True(t, cqrs.IsRefusal(fmt.Errorf("register: %w", valueobject.WithField(emailErr, "email"))), "valueobject's field error")
}

func TestLoggingDisabledLevelLogsNothing(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Logging(logger)}})
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	id, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{Email: "a"})
	require.NoError(t, err)
	require.Equal(t, UserID("id-a"), id)
	require.Empty(t, buf.String(), "success is logged at debug")
}

// fakeUoW is a UnitOfWork that records what happens to its transactions.
type fakeUoW struct {
	rec       *recorder
	n         int
	commitErr error
}

type txKey struct{}

func (u *fakeUoW) Do(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	if _, ok := ctx.Value(txKey{}).(string); ok {
		return fn(ctx) // joins the transaction in ctx
	}
	u.n++
	tx := fmt.Sprintf("tx%d", u.n)
	u.rec.add("begin " + tx)
	defer func() {
		if v := recover(); v != nil {
			u.rec.add("rollback " + tx + " on panic")
			panic(v)
		}
	}()
	if err := fn(context.WithValue(ctx, txKey{}, tx)); err != nil {
		u.rec.add("rollback " + tx + ": " + err.Error())
		return err
	}
	if u.commitErr != nil {
		u.rec.add("commit " + tx + " failed")
		return u.commitErr
	}
	u.rec.add("commit " + tx)
	return nil
}

func TestTransaction(t *testing.T) {
	t.Parallel()
	var rec recorder
	uow := &fakeUoW{rec: &rec}
	bus := newBus(t, &cqrs.Config{
		CommandMiddleware: []cqrs.Middleware{cqrs.Transaction(uow)},
		QueryMiddleware:   []cqrs.Middleware{cqrs.Transaction(uow)},
	})
	require.NoError(t, cqrs.HandleCommand(bus, func(ctx context.Context, c VerifyEmail) (string, error) {
		tx, _ := ctx.Value(txKey{}).(string)
		rec.add("handler in " + tx)
		if c.ID == "bad" {
			return "partial", errors.New("bad id")
		}
		return "ok", nil
	}))
	require.NoError(t, cqrs.HandleQuery(bus, func(ctx context.Context, _ GetUser) (UserView, error) {
		_, inTx := ctx.Value(txKey{}).(string)
		rec.add(fmt.Sprintf("query in tx: %t", inTx))
		return UserView{ID: "u1"}, nil
	}))

	res, err := cqrs.Send[string](context.Background(), bus, VerifyEmail{ID: "u1"})
	require.NoError(t, err)
	require.Equal(t, "ok", res)
	require.Equal(t, []string{"begin tx1", "handler in tx1", "commit tx1"}, rec.get())

	rec = recorder{}
	res, err = cqrs.Send[string](context.Background(), bus, VerifyEmail{ID: "bad"})
	require.EqualError(t, err, "bad id")
	require.Empty(t, res, "no result from a rolled-back command")
	require.Equal(t, []string{"begin tx2", "handler in tx2", "rollback tx2: bad id"}, rec.get())

	// A refusal whose writes must stay: committed, then returned.
	rec = recorder{}
	wrongCode := errors.New("wrong code")
	require.NoError(t, cqrs.HandleCommand(bus, func(ctx context.Context, _ PtrNamed) (string, error) {
		rec.add("handler in " + ctx.Value(txKey{}).(string))
		return "ignored", cqrs.KeepChanges(wrongCode)
	}))
	res, err = cqrs.Send[string](context.Background(), bus, PtrNamed{})
	require.Same(t, wrongCode, err, "the handler's own error, unwrapped")
	require.Empty(t, res)
	require.Equal(t, []string{"begin tx3", "handler in tx3", "commit tx3"}, rec.get())
	require.NoError(t, cqrs.KeepChanges(nil))
	require.ErrorIs(t, cqrs.KeepChanges(wrongCode), wrongCode, "transparent without Transaction")
	require.EqualError(t, cqrs.KeepChanges(wrongCode), "wrong code")

	rec = recorder{}
	commitErr := errors.New("commit failed")
	uow.commitErr = commitErr
	res, err = cqrs.Send[string](context.Background(), bus, VerifyEmail{ID: "u1"})
	require.Same(t, commitErr, err, "a failed commit is the command's error")
	require.Empty(t, res)
	uow.commitErr = nil

	rec = recorder{}
	view, err := cqrs.Ask[UserView](context.Background(), bus, GetUser{})
	require.NoError(t, err)
	require.Equal(t, UserID("u1"), view.ID)
	require.Equal(t, []string{"query in tx: false"}, rec.get(), "queries pass through untouched")
}

func TestTransactionInsideRetryGetsAFreshTransactionPerAttempt(t *testing.T) {
	t.Parallel()
	var rec recorder
	mw, err := cqrs.Retry(&cqrs.RetryConfig{Policy: retryPolicyFast})
	require.NoError(t, err)
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{mw, cqrs.Transaction(&fakeUoW{rec: &rec})}})
	attempts := 0
	require.NoError(t, cqrs.HandleCommand(bus, func(ctx context.Context, _ VerifyEmail) (int, error) {
		attempts++
		rec.add(fmt.Sprintf("attempt %d in %s", attempts, ctx.Value(txKey{})))
		if attempts == 1 {
			return 0, conflict()
		}
		return attempts, nil
	}))
	n, err := cqrs.Send[int](context.Background(), bus, VerifyEmail{})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []string{
		"begin tx1", "attempt 1 in tx1", "rollback tx1: " + conflict().Error(),
		"begin tx2", "attempt 2 in tx2", "commit tx2",
	}, rec.get())
}

func TestTransactionRollsBackOnPanic(t *testing.T) {
	t.Parallel()
	var rec recorder
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Recover(), cqrs.Transaction(&fakeUoW{rec: &rec})}})
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, VerifyEmail) (int, error) { panic("boom") }))
	err := cqrs.Exec(context.Background(), bus, VerifyEmail{})
	var pe *cqrs.PanicError
	require.ErrorAs(t, err, &pe, "the panic went on to Recover")
	require.Equal(t, "boom", pe.Value)
	require.Equal(t, []string{"begin tx1", "rollback tx1 on panic"}, rec.get())
}

func TestTransactionWithNilUnitOfWorkFails(t *testing.T) {
	t.Parallel()
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Transaction(nil)}})
	called := false
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, VerifyEmail) (int, error) { called = true; return 1, nil }))
	err := cqrs.Exec(context.Background(), bus, VerifyEmail{})
	require.EqualError(t, err, "cqrs: command cqrs_test.VerifyEmail: Transaction has a nil UnitOfWork")
	require.False(t, called)
}
