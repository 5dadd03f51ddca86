package hive

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/beltran/gohive"
	"github.com/beltran/gohive/hiveserver"

	"github.com/liminal-data/liminal/connectors"
)

// conn is one HiveServer2 session. Not safe for concurrent use.
type conn struct {
	addr    string
	trans   thrift.TTransport
	client  *hiveserver.TCLIServiceClient
	session *hiveserver.TSessionHandle
}

// testHookStatement, when set, sees every statement sent.
var testHookStatement func(stmt string)

// maxMessage bounds one Thrift message (one fetch of fetch_size rows).
const maxMessage = 1 << 30

// dial opens a session. Failures to reach the server are transient and
// name the address; the password never appears in an error.
func dial(ctx context.Context, c *config) (*conn, error) {
	addr := net.JoinHostPort(c.host, strconv.Itoa(c.port))
	d := net.Dialer{Timeout: c.connectTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, connectors.Transient(fmt.Errorf("hive %s: cannot connect: %w", addr, err))
	}
	tc := &thrift.TConfiguration{ConnectTimeout: c.connectTimeout, SocketTimeout: c.socketTimeout, MaxMessageSize: maxMessage}
	sock := thrift.NewTSocketFromConnConf(nc, tc)
	var trans thrift.TTransport
	switch c.auth {
	case "NOSASL":
		trans = thrift.NewTBufferedTransport(sock, 1<<16)
	case "NONE", "LDAP":
		pw := c.password
		if pw == "" {
			pw = "x" // PLAIN needs a password even when the server ignores it
		}
		st, err := gohive.NewTSaslTransport(sock, c.host, "PLAIN", map[string]string{"username": c.user, "password": pw}, gohive.DEFAULT_MAX_LENGTH)
		if err != nil {
			nc.Close()
			return nil, connectors.Permanent(fmt.Errorf("hive %s: sasl: %v", addr, err))
		}
		if err := st.Open(); err != nil {
			nc.Close()
			return nil, classifyTransport(fmt.Errorf("hive %s: sasl handshake (auth %s; does the server use it?): %w", addr, c.auth, err))
		}
		trans = st
	default:
		nc.Close()
		return nil, connectors.Permanent(fmt.Errorf("hive: unknown auth %q (want NOSASL, NONE or LDAP)", c.auth))
	}
	client := hiveserver.NewTCLIServiceClientFactory(trans, thrift.NewTBinaryProtocolFactoryConf(tc))
	req := hiveserver.NewTOpenSessionReq()
	req.ClientProtocol = hiveserver.TProtocolVersion_HIVE_CLI_SERVICE_PROTOCOL_V6
	req.Username = &c.user
	if c.password != "" {
		req.Password = &c.password
	}
	req.Configuration = map[string]string{
		// Hive prefixes column names with the table name otherwise.
		"set:hiveconf:hive.resultset.use.unique.column.names": "false",
	}
	if c.db != "" {
		req.Configuration["use:database"] = c.db
	}
	resp, err := client.OpenSession(ctx, req)
	if err != nil {
		trans.Close()
		return nil, classifyTransport(fmt.Errorf("hive %s: open session (auth %s; the server's hive.server2.authentication must match): %w", addr, c.auth, err))
	}
	if err := statusError(resp.Status); err != nil {
		trans.Close()
		return nil, fmt.Errorf("hive %s: open session: %w", addr, err)
	}
	cn := &conn{addr: addr, trans: trans, client: client, session: resp.SessionHandle}
	if c.db != "" {
		// Servers that ignore use:database still honour USE.
		if err := cn.run(ctx, "USE `"+strings.ReplaceAll(c.db, "`", "``")+"`"); err != nil {
			cn.close()
			return nil, err
		}
	}
	return cn, nil
}

// close ends the session and the connection. Idempotent.
func (c *conn) close() {
	if c == nil || c.trans == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = c.client.CloseSession(ctx, &hiveserver.TCloseSessionReq{SessionHandle: c.session})
	_ = c.trans.Close()
	c.trans = nil
}

// run executes a statement without a result set.
func (c *conn) run(ctx context.Context, stmt string) error {
	op, err := c.execute(ctx, stmt)
	if err != nil {
		return err
	}
	c.closeOp(op)
	return nil
}

// execute starts stmt asynchronously and waits until it finished; on
// cancellation the operation is cancelled on the server.
func (c *conn) execute(ctx context.Context, stmt string) (*hiveserver.TOperationHandle, error) {
	if testHookStatement != nil {
		testHookStatement(stmt)
	}
	req := hiveserver.NewTExecuteStatementReq()
	req.SessionHandle = c.session
	req.Statement = stmt
	req.RunAsync = true
	resp, err := c.client.ExecuteStatement(ctx, req)
	if err != nil {
		return nil, classifyTransport(fmt.Errorf("hive %s: execute: %w", c.addr, err))
	}
	if err := statusError(resp.Status); err != nil {
		return nil, err
	}
	op := resp.OperationHandle
	wait := 5 * time.Millisecond
	for {
		st, err := c.client.GetOperationStatus(ctx, &hiveserver.TGetOperationStatusReq{OperationHandle: op})
		if err != nil {
			if ctx.Err() != nil {
				c.cancelOp(op)
				return nil, ctx.Err()
			}
			return nil, classifyTransport(fmt.Errorf("hive %s: operation status: %w", c.addr, err))
		}
		if err := statusError(st.Status); err != nil {
			c.closeOp(op)
			return nil, err
		}
		state := hiveserver.TOperationState_UKNOWN_STATE
		if st.OperationState != nil {
			state = *st.OperationState
		}
		switch state {
		case hiveserver.TOperationState_FINISHED_STATE:
			return op, nil
		case hiveserver.TOperationState_INITIALIZED_STATE, hiveserver.TOperationState_RUNNING_STATE, hiveserver.TOperationState_PENDING_STATE:
		default:
			c.closeOp(op)
			msg := st.GetErrorMessage()
			if msg == "" {
				msg = "operation " + strings.ToLower(strings.TrimSuffix(state.String(), "_STATE"))
			}
			return nil, serverError(msg, st.GetSqlState())
		}
		select {
		case <-ctx.Done():
			c.cancelOp(op)
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

func (c *conn) cancelOp(op *hiveserver.TOperationHandle) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = c.client.CancelOperation(ctx, &hiveserver.TCancelOperationReq{OperationHandle: op})
	_, _ = c.client.CloseOperation(ctx, &hiveserver.TCloseOperationReq{OperationHandle: op})
}

func (c *conn) closeOp(op *hiveserver.TOperationHandle) {
	if op == nil || c.trans == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = c.client.CloseOperation(ctx, &hiveserver.TCloseOperationReq{OperationHandle: op})
}

// metadata returns the result set's columns.
func (c *conn) metadata(ctx context.Context, op *hiveserver.TOperationHandle) ([]*hiveserver.TColumnDesc, error) {
	resp, err := c.client.GetResultSetMetadata(ctx, &hiveserver.TGetResultSetMetadataReq{OperationHandle: op})
	if err != nil {
		return nil, classifyTransport(fmt.Errorf("hive %s: result metadata: %w", c.addr, err))
	}
	if err := statusError(resp.Status); err != nil {
		return nil, err
	}
	if resp.Schema == nil {
		return nil, nil
	}
	return resp.Schema.Columns, nil
}

// fetch returns up to n rows as columns; no columns or zero rows is the end.
func (c *conn) fetch(ctx context.Context, op *hiveserver.TOperationHandle, n int64) ([]column, int, error) {
	req := hiveserver.NewTFetchResultsReq()
	req.OperationHandle = op
	req.Orientation = hiveserver.TFetchOrientation_FETCH_NEXT
	req.MaxRows = n
	resp, err := c.client.FetchResults(ctx, req)
	if err != nil {
		return nil, 0, classifyTransport(fmt.Errorf("hive %s: fetch: %w", c.addr, err))
	}
	if err := statusError(resp.Status); err != nil {
		return nil, 0, err
	}
	if resp.Results == nil || len(resp.Results.Columns) == 0 {
		return nil, 0, nil
	}
	cols := make([]column, len(resp.Results.Columns))
	for i, tc := range resp.Results.Columns {
		cols[i] = column{tc}
	}
	rows := cols[0].len()
	for i, col := range cols {
		if col.len() != rows {
			return nil, 0, connectors.Permanent(fmt.Errorf("hive %s: fetch: column %d has %d values, column 1 has %d", c.addr, i+1, col.len(), rows))
		}
	}
	return cols, rows, nil
}

// query runs stmt and returns all rows as text; for small metadata
// statements (DESCRIBE, SHOW PARTITIONS, min/max).
func (c *conn) query(ctx context.Context, stmt string) ([][]*string, error) {
	op, err := c.execute(ctx, stmt)
	if err != nil {
		return nil, err
	}
	defer c.closeOp(op)
	var out [][]*string
	for {
		cols, n, err := c.fetch(ctx, op, 10000)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return out, nil
		}
		for i := range n {
			row := make([]*string, len(cols))
			for j, col := range cols {
				if !isNull(col.nulls(), i) {
					s := col.text(i)
					row[j] = &s
				}
			}
			out = append(out, row)
		}
	}
}

// statusError turns a non-success status into an error.
func statusError(st *hiveserver.TStatus) error {
	if st == nil {
		return nil
	}
	switch st.StatusCode {
	case hiveserver.TStatusCode_SUCCESS_STATUS, hiveserver.TStatusCode_SUCCESS_WITH_INFO_STATUS,
		hiveserver.TStatusCode_STILL_EXECUTING_STATUS:
		return nil
	}
	msg := st.GetErrorMessage()
	if msg == "" {
		msg = strings.Join(st.InfoMessages, "; ")
	}
	if msg == "" {
		msg = st.StatusCode.String()
	}
	return serverError(msg, st.GetSqlState())
}

// serverError classifies an error the server reported by its SQL state:
// connection (08), transaction rollback (40), insufficient resources (53)
// and operator intervention (57) are worth a retry; anything else, bad SQL
// above all, is permanent. The message is the server's, on one line.
func serverError(msg, sqlState string) error {
	m := serverMessage(msg)
	err := fmt.Errorf("hive: %s", m)
	if sqlState != "" && !strings.Contains(m, sqlState) {
		err = fmt.Errorf("hive: %s (SQLSTATE %s)", m, sqlState)
	}
	switch {
	case strings.HasPrefix(sqlState, "08"), strings.HasPrefix(sqlState, "40"),
		strings.HasPrefix(sqlState, "53"), strings.HasPrefix(sqlState, "57"):
		return connectors.Transient(err)
	}
	return connectors.Permanent(err)
}

// javaClass matches "org.apache.x.FooException: " in server messages.
var javaClass = regexp.MustCompile(`(?:[A-Za-z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error):\s*`)

// serverMessage keeps what a HiveServer2 error message says, without the
// Java exception class names, the query echo and the stack trace.
func serverMessage(msg string) string {
	var keep []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "== SQL") || strings.HasPrefix(l, "at ") || strings.HasPrefix(l, "Caused by") {
			break
		}
		l = strings.TrimSpace(javaClass.ReplaceAllString(l, ""))
		l = strings.TrimPrefix(l, "Error running query: ")
		if l != "" {
			keep = append(keep, l)
		}
	}
	out := strings.Join(keep, " ")
	// Spark repeats its error class: "[X] [X] Message".
	if k := strings.Index(out, "] "); strings.HasPrefix(out, "[") && k > 0 && strings.HasPrefix(out[k+2:], out[:k+1]) {
		out = out[k+2:]
	}
	if out == "" {
		out = strings.TrimSpace(msg)
	}
	if len(out) > 1000 {
		out = out[:1000] + "..."
	}
	return out
}

// classifyTransport marks network and protocol failures transient, except
// a message over the size limit, which no retry fixes.
func classifyTransport(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pe thrift.TProtocolException
	if errors.As(err, &pe) && pe.TypeId() == thrift.SIZE_LIMIT {
		return connectors.Permanent(fmt.Errorf("%w (lower fetch_size)", err))
	}
	return connectors.Transient(err)
}
