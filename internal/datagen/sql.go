package datagen

import (
	"fmt"
	"strings"
)

// Constants of the lowbias32 hash (Chris Wellons, "Prospecting for Hash
// Functions"): x ^= x>>16; x *= 0x7feb352d; x ^= x>>15; x *= 0x846ca68b;
// x ^= x>>16, all modulo 2^32. Written in decimal because DuckDB 1.1 has no
// hexadecimal literals. Every intermediate value is below 2^32 and every
// product below 2^64, so UBIGINT arithmetic never overflows.
const (
	mulA   = "2146121005::UBIGINT" // 0x7feb352d
	mulB   = "2221713035::UBIGINT" // 0x846ca68b
	mask32 = "4294967295::UBIGINT"
	inv32  = "2.3283064365386963e-10" // 2^-32
)

// Stream identifiers. Each hashed value gets its own key derived from the
// seed and one of these constants, so changing one column never changes the
// values of another. The numbers are part of the dataset definition: never
// renumber them (testdata/golden would show the change).
const (
	streamRow0         uint64 = 1
	streamRow1         uint64 = 2
	streamCustomer     uint64 = 3
	streamJitter       uint64 = 4
	streamEvent        uint64 = 5
	streamDevice       uint64 = 6
	streamGauss1       uint64 = 7
	streamGauss2       uint64 = 8
	streamQuantity     uint64 = 9
	streamTravel       uint64 = 10
	streamHomeCountry  uint64 = 11
	streamFirstName    uint64 = 12
	streamLastName     uint64 = 13
	streamSegment      uint64 = 14
	streamSignup       uint64 = 15
	streamLTV1         uint64 = 16
	streamLTV2         uint64 = 17
	streamLTVNull      uint64 = 18
	streamCustomerPerm uint64 = 19
)

// epoch20240101Ms is 2024-01-01T00:00:00Z in milliseconds since the epoch.
const epoch20240101Ms = 1704067200000

// msPerDay is the number of milliseconds in a day.
const msPerDay = 86_400_000

// eventDays is the number of days the events span.
const eventDays = 90

// splitmix64 returns the output of Sebastiano Vigna's SplitMix64 generator
// for state x (one step: add the golden gamma, then the finaliser). It
// derives the per-stream keys; Go arithmetic wraps, so it runs here and not
// in SQL.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// streamKey returns the 32-bit key of stream s for seed.
func streamKey(seed, s uint64) uint64 {
	return splitmix64(seed^splitmix64(s)) >> 32
}

// chain builds a query as a stack of projections. Each step selects every
// column of the previous step plus new ones, so a hash round can refer to the
// previous round's value by column name twice without DuckDB expanding the
// expression tree. DuckDB prunes the columns the final projection does not
// use.
type chain struct {
	sql   string
	depth int
}

func newChain(from string) *chain {
	return &chain{sql: from}
}

// add appends one projection step with the given "expr AS name" items.
func (c *chain) add(items ...string) {
	c.depth++
	c.sql = fmt.Sprintf("SELECT *, %s FROM (%s) AS s%d", strings.Join(items, ", "), c.sql, c.depth)
}

// hash appends the three projection steps that compute lowbias32 of each
// input. in maps output column names to UBIGINT expressions below 2^32; the
// expressions are evaluated twice, so they should be cheap. Outputs are
// UBIGINT in [0, 2^32).
func (c *chain) hash(names []string, in []string) {
	s1 := make([]string, len(names))
	s2 := make([]string, len(names))
	s3 := make([]string, len(names))
	for i, n := range names {
		x := in[i]
		s1[i] = fmt.Sprintf("((xor(%[1]s, %[1]s >> 16) * %[2]s) & %[3]s) AS %[4]s__1", x, mulA, mask32, n)
		s2[i] = fmt.Sprintf("((xor(%[1]s__1, %[1]s__1 >> 15) * %[2]s) & %[3]s) AS %[1]s__2", n, mulB, mask32)
		s3[i] = fmt.Sprintf("xor(%[1]s__2, %[1]s__2 >> 16) AS %[1]s", n)
	}
	c.add(s1...)
	c.add(s2...)
	c.add(s3...)
}

// keyed returns the SQL for xor(col, key) where key is the stream's key.
func keyed(col string, seed, stream uint64) string {
	return fmt.Sprintf("xor(%s, %d::UBIGINT)", col, streamKey(seed, stream))
}

// unit returns a DOUBLE in [0, 1) from a 32-bit hash column.
func unit(h string) string {
	return fmt.Sprintf("(%s::DOUBLE * %s)", h, inv32)
}

// unitOpen returns a DOUBLE in (0, 1] from a 32-bit hash column, safe for ln.
func unitOpen(h string) string {
	return fmt.Sprintf("((%s + 1)::DOUBLE * %s)", h, inv32)
}

// lowBits returns the low 10 bits of a hash column (a value in [0, 1024)),
// used for rare flags such as NULLs.
func lowBits(h string) string {
	return fmt.Sprintf("(%s & 1023::UBIGINT)", h)
}

// highBits returns the upper 22 bits of a hash column (a value in [0, 2^22)),
// used for categorical choices; independent of lowBits of the same column.
func highBits(h string) string {
	return fmt.Sprintf("(%s >> 10)", h)
}

// choice is one value of a categorical column with its relative weight.
type choice struct {
	value  string
	weight int
}

// pick returns a CASE expression choosing among choices with probability
// proportional to their weights. bits is an integer expression uniform in
// [0, 2^22). Thresholds are integers computed here, so the choice does not
// depend on floating-point rounding.
func pick(bits string, choices []choice) string {
	total := 0
	for _, c := range choices {
		total += c.weight
	}
	var b strings.Builder
	b.WriteString("CASE")
	cum := 0
	for i, c := range choices {
		if i == len(choices)-1 {
			fmt.Fprintf(&b, " ELSE %s END", quote(c.value))
			break
		}
		cum += c.weight
		fmt.Fprintf(&b, " WHEN %s < %d THEN %s", bits, (int64(cum)<<22)/int64(total), quote(c.value))
	}
	return b.String()
}

// quote returns s as a SQL string literal.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// listIndex returns an expression picking an element of values uniformly with
// a 32-bit hash column h.
func listIndex(h string, values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = quote(v)
	}
	return fmt.Sprintf("[%s][1 + ((%s * %d::UBIGINT) >> 32)::BIGINT]", strings.Join(q, ", "), h, len(values))
}

var (
	eventTypes = []choice{
		{"view", 620}, {"click", 240}, {"add_to_cart", 90}, {"purchase", 45}, {"refund", 5},
	}
	countries = []choice{
		{"US", 28}, {"IN", 10}, {"GB", 9}, {"DE", 8}, {"BR", 7}, {"FR", 6}, {"CA", 5}, {"JP", 5},
		{"MX", 4}, {"ES", 4}, {"IT", 4}, {"AU", 3}, {"NL", 3}, {"PL", 2}, {"SE", 2},
	}
	devices  = []choice{{"android", 42}, {"ios", 38}, {"web", 20}}
	segments = []choice{{"consumer", 80}, {"smb", 16}, {"enterprise", 4}}

	firstNames = []string{
		"Ada", "Alan", "Amara", "Ana", "Andrei", "Aisha", "Ben", "Carla", "Chen", "Daniel",
		"Elena", "Emma", "Farah", "Felix", "Grace", "Hana", "Hiro", "Ines", "Ivan", "James",
		"Jonas", "Julia", "Kofi", "Lars", "Laura", "Leo", "Lucia", "Maria", "Mateo", "Mei",
		"Mohammed", "Nadia", "Noah", "Olga", "Omar", "Priya", "Rahul", "Rosa", "Sara", "Sofia",
		"Tomas", "Yara", "Yuki", "Zoe",
	}
	lastNames = []string{
		"Andersson", "Bauer", "Costa", "da Silva", "Dubois", "Fischer", "Garcia", "Gupta", "Hansen", "Hernandez",
		"Ivanova", "Jensen", "Kim", "Kowalski", "Lee", "Lopez", "Martin", "Meyer", "Moreau", "Müller",
		"Nakamura", "Nguyen", "O'Brien", "Okafor", "Patel", "Rossi", "Sato", "Schmidt", "Singh", "Smith",
		"Tanaka", "Taylor", "Wang", "Williams", "Wilson", "Yilmaz", "Zhang",
	}
)

// custPerm returns the affine permutation that scatters activity ranks over
// customer ids: customer id = 1 + (rank * p + off) mod n with p coprime with
// n, and inv, the inverse of p modulo n. Hot customers therefore are not
// simply the smallest ids.
func custPerm(seed uint64, n int64) (p, inv, off int64) {
	h := splitmix64(seed ^ splitmix64(streamCustomerPerm))
	off = int64(h % uint64(n))
	if n <= 2 {
		return 1, 1, off
	}
	p = int64((h>>32)%uint64(n-1)) + 1
	for gcd(p, n) != 1 {
		p = p%(n-1) + 1
	}
	return p, modInverse(p, n), off
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// modInverse returns x with a*x ≡ 1 (mod n) for gcd(a, n) = 1.
func modInverse(a, n int64) int64 {
	t, newT := int64(0), int64(1)
	r, newR := n, a
	for newR != 0 {
		q := r / newR
		t, newT = newT, t-q*newT
		r, newR = newR, r-q*newR
	}
	if t < 0 {
		t += n
	}
	return t
}

// eventsQuery returns the SELECT producing events rows [start, end) of a
// dataset of rows events.
func eventsQuery(seed uint64, customers, rows, start, end int64) string {
	perm, _, off := custPerm(seed, customers)
	c := newChain(fmt.Sprintf("SELECT i AS event_id, i::UBIGINT AS u FROM range(%d, %d) AS t(i)", start, end))

	// Row base: a bijection of the row index for every 2^32-row block.
	c.hash([]string{"r0"}, []string{keyed("(u & "+mask32+")", seed, streamRow0)})
	c.hash([]string{"r"}, []string{keyed(fmt.Sprintf("xor(r0, (u >> 32) & %s)", mask32), seed, streamRow1)})

	streams := []struct {
		name string
		id   uint64
	}{
		{"h_cust", streamCustomer}, {"h_jitter", streamJitter},
		{"h_event", streamEvent}, {"h_device", streamDevice}, {"h_g1", streamGauss1}, {"h_g2", streamGauss2},
		{"h_qty", streamQuantity}, {"h_travel", streamTravel},
	}
	names := make([]string, len(streams))
	in := make([]string, len(streams))
	for i, s := range streams {
		names[i] = s.name
		in[i] = keyed("r", seed, s.id)
	}
	c.hash(names, in)

	// Customer: activity rank with density ~ 1/sqrt(rank) (the top customer
	// has about 100x the average number of events for 10k customers),
	// scattered over ids by a multiplicative permutation.
	uc := unit("h_cust")
	c.add(
		fmt.Sprintf("(1 + (least(floor(%d * %s * %s)::BIGINT, %d) * %d + %d) %% %d)::INTEGER AS customer_id",
			customers, uc, uc, customers-1, perm, off, customers),
		// Box-Muller: two independent standard normals.
		fmt.Sprintf("sqrt(-2.0 * ln(%s)) AS g_rad", unitOpen("h_g1")),
		fmt.Sprintf("(2.0 * pi() * %s) AS g_ang", unit("h_g2")),
		// Timestamps follow event_id like an append-only log: the quantile
		// p of the event is mapped through the inverse CDF of the traffic
		// over the period (growing linearly by 50%%: density 1 + 0.5x on
		// [0, 1)), then within the day through the inverse CDF of a
		// triangular daily cycle peaking at 12:00 UTC; a ±30 s jitter
		// below adds the slight disorder of real event logs.
		fmt.Sprintf("%d * 2.0 * (sqrt(1.0 + 1.25 * ((event_id + 0.5) / %d.0)) - 1.0) AS period_pos", eventDays, rows),
		fmt.Sprintf("%s AS event_type", pick(highBits("h_event"), eventTypes)),
		fmt.Sprintf("CASE WHEN %s < 20 THEN NULL ELSE %s END AS device", lowBits("h_device"), pick(highBits("h_device"), devices)),
		fmt.Sprintf("(%s < 10) AS price_null", lowBits("h_event")),
	)
	c.add(
		"floor(period_pos) AS day",
		"(period_pos - floor(period_pos)) AS day_frac",
	)
	c.add("day + CASE WHEN day_frac < 0.5 THEN sqrt(day_frac * 0.5) ELSE 1.0 - sqrt((1.0 - day_frac) * 0.5) END AS day_pos")
	c.hash([]string{"h_home"}, []string{keyed("customer_id::UBIGINT", seed, streamHomeCountry)})
	jitter := fmt.Sprintf("floor((%s - 0.5) * 60000)::BIGINT", unit("h_jitter"))
	c.add(
		"round(greatest(0.99, least(9999.99, 24.99 * exp(g_rad * cos(g_ang)))) * 100.0) / 100.0 AS price_raw",
		fmt.Sprintf("CASE WHEN event_type IN ('view', 'click') THEN NULL ELSE least(1 + floor(-0.7 * ln(%s)), 10)::INTEGER END AS quantity",
			unitOpen("h_qty")),
		fmt.Sprintf("epoch_ms(least(greatest(%d + floor(day_pos * %d)::BIGINT + %s, %d), %d)) AS ts",
			int64(epoch20240101Ms), int64(msPerDay), jitter, int64(epoch20240101Ms), int64(epoch20240101Ms+eventDays*msPerDay-1)),
	)
	return fmt.Sprintf(`SELECT
	event_id,
	customer_id,
	ts,
	ts::DATE AS dt,
	event_type,
	CASE WHEN %s < 51 THEN %s ELSE %s END AS country,
	device,
	CASE event_type
		WHEN 'purchase' THEN round(price_raw * quantity * 100.0) / 100.0
		WHEN 'refund' THEN -round(price_raw * quantity * 100.0) / 100.0
		ELSE 0.0 END::DOUBLE AS amount,
	quantity,
	greatest(50, round(45000.0 * exp(1.1 * g_rad * sin(g_ang))))::BIGINT AS session_ms,
	device IN ('ios', 'android') AS is_mobile,
	CASE WHEN price_null THEN NULL ELSE price_raw::DECIMAL(10, 2) END AS price
FROM (%s) AS events`,
		lowBits("h_travel"), pick(highBits("h_travel"), countries), pick(highBits("h_home"), countries), c.sql)
}

// customersQuery returns the SELECT producing all customers.
func customersQuery(seed uint64, customers int64) string {
	_, inv, off := custPerm(seed, customers)
	c := newChain(fmt.Sprintf("SELECT cid, cid::UBIGINT AS u FROM range(1, %d) AS t(cid)", customers+1))
	streams := []struct {
		name string
		id   uint64
	}{
		{"h_home", streamHomeCountry}, {"h_first", streamFirstName}, {"h_last", streamLastName},
		{"h_seg", streamSegment}, {"h_signup", streamSignup}, {"h_l1", streamLTV1}, {"h_l2", streamLTV2},
		{"h_lnull", streamLTVNull},
	}
	names := make([]string, len(streams))
	in := make([]string, len(streams))
	for i, s := range streams {
		names[i] = s.name
		in[i] = keyed("u", seed, s.id)
	}
	c.hash(names, in)
	c.add(
		fmt.Sprintf("%s AS segment", pick(highBits("h_seg"), segments)),
		// Activity rank of the customer (0 = most active), the inverse of the
		// permutation used for events.customer_id.
		fmt.Sprintf("((((cid - 1 - %[1]d) %% %[3]d + %[3]d) %% %[3]d) * %[2]d %% %[3]d) AS act_rank", off, inv, customers),
		fmt.Sprintf("sqrt(-2.0 * ln(%s)) * cos(2.0 * pi() * %s) AS z", unitOpen("h_l1"), unit("h_l2")),
	)
	// signup between 2019-01-01 and 2023-12-31 (1826 days).
	return fmt.Sprintf(`SELECT
	cid::INTEGER AS customer_id,
	%s || ' ' || %s AS name,
	segment,
	(DATE '2019-01-01' + ((%s * 1826::UBIGINT) >> 32)::INTEGER) AS signup_date,
	%s AS country,
	CASE WHEN %s < 15 THEN NULL ELSE round(
		CASE segment WHEN 'consumer' THEN 120.0 WHEN 'smb' THEN 2500.0 ELSE 40000.0 END
		* exp(0.9 * z)
		* sqrt(sqrt(%d.0 / (act_rank + 1))) * 100.0) / 100.0 END::DOUBLE AS lifetime_value
FROM (%s) AS customers`,
		listIndex("h_first", firstNames), listIndex("h_last", lastNames), "h_signup",
		pick(highBits("h_home"), countries), lowBits("h_lnull"), customers, c.sql)
}
