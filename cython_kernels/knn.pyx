# cython: language_level=3
"""Exact k-nearest neighbours in the plane on a uniform grid.

The distributed network builder asks, for every query, for the ``k`` points
with the smallest ``(d2, gid)`` (lexicographic), where
``d2 = dx*dx + dy*dy`` with ``dx = qx - px`` and ``dy = qy - py``. The
expression is evaluated exactly in that form (the build passes
``-ffp-contract=off``, so no FMA), which makes ``d2`` bit-identical on every
rank and in the numpy twin ``tokensim_hpc.numpy_kernels.knn``.

Method
------
The points are counting-sorted into a uniform grid of square cells of side
``h`` over their bounding box, about two points per cell, and copied in cell
order (row-major) so that a run of cells in a row is one contiguous slice.
Each query visits the cells around its own in rings of growing Chebyshev
distance ``rho``, keeping the ``k`` best candidates in a sorted buffer, and
stops as soon as no unvisited point can enter the result (see ``_query`` for
the bound and why it is safe in floating point). Queries are processed in
cell order, for cache locality; results do not depend on it.
"""

from libc.math cimport floor, sqrt, isfinite, INFINITY
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport malloc, free


# Query cell coordinates are clamped to [-_FAR, G - 1 + _FAR] so that they
# fit in an int64 whatever the query (huge or infinite coordinates). Clamping
# moves a query towards the grid, which only makes the distance bounds
# smaller, i.e. conservative (see _query).
cdef double _FAR = 1073741824.0  # 2**30

# Most points of a first square ranked at once (see _scan_square).
cdef enum:
    _RANK_MAX = 32

# Queries whose results are buffered before going to the caller's rows.
cdef int64_t _CHUNK = 1024

# Safety margins of the distance bounds against rounding (see _query).
cdef double _SLACK_CELL = 1e-12   # relative, on cell coordinates
cdef double _SLACK_LEN = 1e-12    # relative, on a lower-bound length
cdef double _SLACK_D2 = 1e-322    # absolute, on a lower-bound d2 (subnormals)


cdef struct Grid:
    double x0          # lower-left corner of the grid (the points' bbox min)
    double y0
    double h           # cell side, > 0
    double inv_h       # 1 / h, finite
    int64_t gx         # cells along x and y, >= 1
    int64_t gy
    int64_t rho0       # Chebyshev radius of the first square a query visits
    int64_t* cell_start   # gx*gy + 1 offsets into the sorted arrays
    double* sxy        # point (x, y) pairs in cell order
    int64_t* sg        # point gid in cell order
    int64_t* si        # point index (into px, py) in cell order


cdef struct Cand:
    double d2
    int64_t j          # position in the sorted arrays


cdef struct Query:
    double x
    double y
    double r2
    int64_t gid


cdef struct Ctx:
    # What a scan or a bound test needs about the current query.
    const double* sxy
    const int64_t* sg
    const int64_t* si
    double qx
    double qy
    double qr2
    int64_t qgid
    double fx          # the query's position inside its cell, in [0, 1)
    double fy
    double delta       # rounding slack of cell coordinates, in cells
    double h
    int k
    int n              # candidates in buf
    Cand* buf


cdef double _cell_side(double w, double hgt, int64_t n) noexcept nogil:
    """Cell side for about two points per cell over a w x hgt box (w, hgt >= 0)."""
    cdef double t = <double>(n // 2) if n >= 2 else 1.0
    cdef double big = w if w >= hgt else hgt
    cdef double small = hgt if w >= hgt else w
    if big <= 0.0:
        # One point or all points at one position: any positive side works.
        return 1.0
    if small < big / t:
        # Thin box (points on, or close to, an axis-parallel line): a 2-D
        # choice would make h smaller than the thin side and the number of
        # cells along the long side explode, so lay ~t cells along the long
        # side only.
        return big / t
    # big * small may overflow; the square roots do not.
    return sqrt(big) * sqrt(small / t)


cdef inline int64_t _point_cell(const Grid* g, double x, double y) noexcept nogil:
    """Cell of a point of the grid (row-major: cy * gx + cx)."""
    cdef int64_t cx, cy
    if g.gx == 1 and g.gy == 1:
        return 0
    # x - x0 >= 0 for the points, so the truncation is the floor.
    cx = <int64_t>((x - g.x0) * g.inv_h)
    cy = <int64_t>((y - g.y0) * g.inv_h)
    if cx > g.gx - 1:
        cx = g.gx - 1
    if cy > g.gy - 1:
        cy = g.gy - 1
    return cy * g.gx + cx


cdef inline int64_t _query_cell(const Grid* g, double x, double y) noexcept nogil:
    """Grid cell nearest to a query's cell (only to order the queries)."""
    cdef double ux = (x - g.x0) * g.inv_h, uy = (y - g.y0) * g.inv_h
    cdef int64_t cx = 0, cy = 0
    if ux >= 1.0:  # False for NaN
        cx = <int64_t>ux if ux < <double>(g.gx - 1) else g.gx - 1
    if uy >= 1.0:
        cy = <int64_t>uy if uy < <double>(g.gy - 1) else g.gy - 1
    return cy * g.gx + cx


cdef int _build(Grid* g, const double[:] px, const double[:] py,
                const int64_t[:] pgid, int k) noexcept nogil:
    """Fill the grid of the points; returns -1 on allocation failure, else 0."""
    cdef int64_t n = px.shape[0], i, c, ncell, p
    cdef double xmin, xmax, ymin, ymax, h, inv_h, per_cell
    cdef bint finite = True

    g.cell_start = NULL
    g.sxy = NULL
    g.sg = NULL
    g.si = NULL

    xmin = ymin = INFINITY
    xmax = ymax = -INFINITY
    for i in range(n):
        if not (isfinite(px[i]) and isfinite(py[i])):
            finite = False
            break
        if px[i] < xmin:
            xmin = px[i]
        if px[i] > xmax:
            xmax = px[i]
        if py[i] < ymin:
            ymin = py[i]
        if py[i] > ymax:
            ymax = py[i]

    g.gx = 1
    g.gy = 1
    g.x0 = 0.0
    g.y0 = 0.0
    g.h = 1.0
    g.inv_h = 1.0
    # Non-finite points, a bbox whose extent overflows, or a cell side that
    # underflows: a single cell holding every point, i.e. a brute force (see
    # _query: a query then visits that cell whatever its position).
    if n > 0 and finite and isfinite(xmax - xmin) and isfinite(ymax - ymin):
        h = _cell_side(xmax - xmin, ymax - ymin, n)
        inv_h = 1.0 / h
        if h > 0.0 and isfinite(inv_h):
            g.x0 = xmin
            g.y0 = ymin
            g.h = h
            g.inv_h = inv_h
            # The same expression as for the points below, so the extreme
            # points land in the last cell.
            g.gx = <int64_t>((xmax - xmin) * inv_h) + 1
            g.gy = <int64_t>((ymax - ymin) * inv_h) + 1
    ncell = g.gx * g.gy

    # First square: the smallest one expected to hold k points besides the
    # query (a performance choice only: the search is exact for any rho0).
    per_cell = <double>n / <double>ncell
    g.rho0 = 0
    while g.rho0 < 4 and (2 * g.rho0 + 1) * (2 * g.rho0 + 1) * per_cell < k + 1:
        g.rho0 += 1

    g.cell_start = <int64_t*>malloc((ncell + 1) * sizeof(int64_t))
    g.sxy = <double*>malloc((2 * n if n > 0 else 1) * sizeof(double))
    g.sg = <int64_t*>malloc((n if n > 0 else 1) * sizeof(int64_t))
    g.si = <int64_t*>malloc((n if n > 0 else 1) * sizeof(int64_t))
    if g.cell_start == NULL or g.sxy == NULL or g.sg == NULL or g.si == NULL:
        return -1

    # Counting sort of the points by cell (row-major: cell = cy * gx + cx).
    for c in range(ncell + 1):
        g.cell_start[c] = 0
    for i in range(n):
        g.cell_start[_point_cell(g, px[i], py[i]) + 1] += 1
    # After the prefix sum cell_start[c + 1] is the start of cell c + 1; the
    # placement loop uses cell_start[c] as the insert position of cell c and
    # leaves it at the end of cell c, so shift back by one afterwards.
    for c in range(ncell):
        g.cell_start[c + 1] += g.cell_start[c]
    for i in range(n):
        c = _point_cell(g, px[i], py[i])
        p = g.cell_start[c]
        g.cell_start[c] = p + 1
        g.sxy[2 * p] = px[i]
        g.sxy[2 * p + 1] = py[i]
        g.sg[p] = pgid[i]
        g.si[p] = i
    for c in range(ncell, 0, -1):
        g.cell_start[c] = g.cell_start[c - 1]
    g.cell_start[0] = 0
    return 0


cdef void _free_grid(Grid* g) noexcept nogil:
    free(g.cell_start)
    free(g.sxy)
    free(g.sg)
    free(g.si)


cdef inline bint _before(const Ctx* c, double d_a, int64_t j_a,
                         double d_b, int64_t j_b) noexcept nogil:
    """(d2, gid, idx) order of two sorted-array positions; idx only breaks
    ties of repeated gids, which callers should not have."""
    if d_a != d_b:
        return d_a < d_b
    if c.sg[j_a] != c.sg[j_b]:
        return c.sg[j_a] < c.sg[j_b]
    return c.si[j_a] < c.si[j_b]


cdef inline double _thr(const Ctx* c) noexcept nogil:
    """Largest d2 that can still enter the buffer (with ties by gid)."""
    return c.qr2 if c.n < c.k else c.buf[c.k - 1].d2


cdef inline void _insert(Ctx* c, double d2, int64_t j) noexcept nogil:
    """Offer point j at squared distance d2 <= _thr(c) to the buffer."""
    cdef int m, k = c.k
    cdef Cand* buf = c.buf
    if c.sg[j] == c.qgid:
        return
    if c.n == k:
        # d2 == thr: enters only if it wins the tie on (gid, idx).
        if d2 == buf[k - 1].d2 and not _before(c, d2, j, d2, buf[k - 1].j):
            return
        m = k - 1
    else:
        m = c.n
        c.n += 1
    # Insertion into the sorted buffer (k is small).
    while m > 0 and (d2 < buf[m - 1].d2 or (
            d2 == buf[m - 1].d2 and _before(c, d2, j, d2, buf[m - 1].j))):
        buf[m] = buf[m - 1]
        m -= 1
    buf[m].d2 = d2
    buf[m].j = j


cdef void _scan(Ctx* c, int64_t start, int64_t end) noexcept nogil:
    """Offer the sorted points start..end-1 to the buffer."""
    cdef int64_t j
    cdef double dx, dy, d2
    cdef double qx = c.qx, qy = c.qy
    cdef double thr = _thr(c)
    cdef const double* sxy = c.sxy
    for j in range(start, end):
        dx = qx - sxy[2 * j]
        dy = qy - sxy[2 * j + 1]
        d2 = dx * dx + dy * dy
        if d2 <= thr:  # False for NaN
            _insert(c, d2, j)
            thr = _thr(c)


cdef bint _scan_square(Ctx* c, const Grid* g, int64_t xlo, int64_t xhi,
                       int64_t ylo, int64_t yhi) noexcept nogil:
    """Fill the empty buffer from the cells xlo..xhi x ylo..yhi at once.

    The candidates (d2 <= qr2, gid != qgid) are gathered and ranked by
    comparing every pair once, and the k first go to the buffer in rank
    order. Unlike one insertion per point, that has no data-dependent
    branches (which cost more than the m*(m-1)/2 comparisons for the few
    points of a first square). If two candidates have equal d2 the ranks
    ignore the gid tie-break, so they fall back to insertions. Returns False,
    having done nothing, if the square holds more than _RANK_MAX points or
    more than 4*k (then insertions are rare anyway).
    """
    cdef double sd[_RANK_MAX]
    cdef int64_t sj[_RANK_MAX]
    cdef int rank[_RANK_MAX]
    cdef int perm[_RANK_MAX]
    cdef const int64_t* cs = g.cell_start
    cdef const double* sxy = c.sxy
    cdef int64_t total = 0, y, j
    cdef int m = 0, i, a, r, b, ties = 0
    cdef double dx, dy, d2, di
    for y in range(ylo, yhi + 1):
        total += cs[y * g.gx + xhi + 1] - cs[y * g.gx + xlo]
    if total > _RANK_MAX or total > 4 * c.k:
        return False
    for y in range(ylo, yhi + 1):
        for j in range(cs[y * g.gx + xlo], cs[y * g.gx + xhi + 1]):
            dx = c.qx - sxy[2 * j]
            dy = c.qy - sxy[2 * j + 1]
            d2 = dx * dx + dy * dy
            sd[m] = d2
            sj[m] = j
            # Keep the entry (advance m) only for a candidate; NaN is not.
            m += (d2 <= c.qr2) & (c.sg[j] != c.qgid)
    for i in range(m):
        rank[i] = 0
    for i in range(1, m):
        di = sd[i]
        r = 0
        for a in range(i):
            b = sd[a] < di
            r += b
            rank[a] += 1 - b
            ties += sd[a] == di
        rank[i] += r
    if ties:
        # Equal d2: insert one by one, with the (gid, idx) tie-break.
        for i in range(m):
            if sd[i] <= _thr(c):
                _insert(c, sd[i], sj[i])
        return True
    for i in range(m):
        perm[rank[i]] = i
    c.n = m if m < c.k else c.k
    for i in range(c.n):
        c.buf[i].d2 = sd[perm[i]]
        c.buf[i].j = sj[perm[i]]
    return True


cdef inline double _lb2(const Ctx* c, double gapx, double gapy) noexcept nogil:
    """Lower bound of the computed d2 of every point whose (computed) cell is
    gapx, gapy >= 0 cells away from the query's position along x and y.

    Rounding: a cell coordinate (p - x0) * inv_h is computed with a few ulps
    of error, i.e. up to ~3.3e-16 * (G + |u|) cells, and the query's fx, fy
    and the gaps by an ulp of its |u|: delta (see _query) over-covers both,
    so the true gaps are >= gap - delta. Then the computed
    d2 = dx*dx + dy*dy is >= (true d2) * (1 - 4.5e-16) minus a few subnormal
    ulps: shrinking the lengths by _SLACK_LEN (before squaring, so that the
    bound overflows to inf only where d2 does) and subtracting _SLACK_D2
    over-covers that. Hence the result is <= the computed d2 of every such
    point.
    """
    gapx = (gapx - c.delta) * c.h * (1.0 - _SLACK_LEN)
    gapy = (gapy - c.delta) * c.h * (1.0 - _SLACK_LEN)
    if gapx < 0.0:
        gapx = 0.0
    if gapy < 0.0:
        gapy = 0.0
    return gapx * gapx + gapy * gapy - _SLACK_D2


cdef inline double _gap(int64_t off, double f) noexcept nogil:
    """Distance in cells from a query at f in [0, 1) inside its cell to the
    cell off cells away (along one axis)."""
    if off > 0:
        return <double>off - f
    if off < 0:
        return <double>(-off - 1) + f
    return 0.0


cdef void _scan_row(Ctx* c, const Grid* g, int64_t cx, int64_t cy, int64_t y,
                    int64_t xlo, int64_t xhi) noexcept nogil:
    """Scan cells xlo..xhi of row y, trimming the cells at either end that
    cannot hold a point that would enter the buffer."""
    cdef double gapy = _gap(y - cy, c.fy)
    cdef double thr = _thr(c)
    # The cells' bound decreases towards cx then increases: trim both ends.
    while xlo <= xhi and _lb2(c, _gap(xlo - cx, c.fx), gapy) > thr:
        xlo += 1
    while xhi >= xlo and _lb2(c, _gap(xhi - cx, c.fx), gapy) > thr:
        xhi -= 1
    if xlo <= xhi:
        _scan(c, g.cell_start[y * g.gx + xlo], g.cell_start[y * g.gx + xhi + 1])


cdef int _query(const Grid* g, const Query* qu, int k, Cand* buf) noexcept nogil:
    """Ring search for one query; fills buf[:n] sorted and returns n."""
    cdef Ctx c
    cdef double ux, uy, m, b2
    cdef int64_t cx, cy, rho, rho_min, xlo, xhi, ylo, yhi, y, i
    cdef int64_t gx = g.gx, gy = g.gy

    c.sxy = g.sxy
    c.sg = g.sg
    c.si = g.si
    c.qx = qu.x
    c.qy = qu.y
    c.qr2 = qu.r2
    c.qgid = qu.gid
    c.h = g.h
    c.k = k
    c.n = 0
    c.buf = buf

    # Nothing can qualify: d2 >= 0 (or NaN for a NaN query) is never <= qr2.
    if not (c.qr2 >= 0.0) or c.qx != c.qx or c.qy != c.qy:
        return 0

    # Cell coordinates of the query, in units of h from the grid's corner:
    # not clamped to the grid (the query may be outside the points' bbox),
    # only to +-_FAR around it.
    ux = (c.qx - g.x0) * g.inv_h
    uy = (c.qy - g.y0) * g.inv_h
    if ux < -_FAR:
        ux = -_FAR
    elif ux > gx - 1 + _FAR:
        ux = gx - 1 + _FAR
    if uy < -_FAR:
        uy = -_FAR
    elif uy > gy - 1 + _FAR:
        uy = gy - 1 + _FAR
    if gx == 1 and gy == 1:
        # A single cell (the fallback of _build among others, where h is
        # arbitrary): the query is put in it, so it is visited first and then
        # no cell is left, without any distance bound being used.
        ux = 0.0
        uy = 0.0
    cx = <int64_t>floor(ux)
    cy = <int64_t>floor(uy)
    c.fx = ux - <double>cx
    c.fy = uy - <double>cy
    c.delta = _SLACK_CELL * (<double>(gx + gy) + (ux if ux >= 0 else -ux)
                             + (uy if uy >= 0 else -uy) + 4.0)

    # Rings below rho_min hold no cell of the grid.
    rho_min = 0
    if -cx > rho_min:
        rho_min = -cx
    if cx - (gx - 1) > rho_min:
        rho_min = cx - (gx - 1)
    if -cy > rho_min:
        rho_min = -cy
    if cy - (gy - 1) > rho_min:
        rho_min = cy - (gy - 1)

    if rho_min == 0:
        # The query's cell is in the grid: visit the square of radius rho0
        # first, ranked at once if small enough, else row by row from the
        # middle out (nearer points first means fewer insertions).
        rho = g.rho0
        xlo = cx - rho if cx - rho > 0 else 0
        xhi = cx + rho if cx + rho < gx - 1 else gx - 1
        ylo = cy - rho if cy - rho > 0 else 0
        yhi = cy + rho if cy + rho < gy - 1 else gy - 1
        if not _scan_square(&c, g, xlo, xhi, ylo, yhi):
            _scan(&c, g.cell_start[cy * gx + xlo], g.cell_start[cy * gx + xhi + 1])
            for i in range(1, rho + 1):
                if cy - i >= 0:
                    _scan_row(&c, g, cx, cy, cy - i, xlo, xhi)
                if cy + i < gy:
                    _scan_row(&c, g, cx, cy, cy + i, xlo, xhi)
    else:
        # Rings 0..rho_min-1 are (empty and) done.
        rho = rho_min - 1

    while True:
        # STOPPING RULE, after every grid cell at Chebyshev distance <= rho
        # from the query's cell (cx, cy) has been visited.
        #
        # In cell units the query is at (cx + fx, cy + fy), and an unvisited
        # point lies in a cell beyond one of the sides of the visited square
        # [cx - rho, cx + rho + 1) x [cy - rho, cy + rho + 1), so at a
        # distance >= the query's distance to that side: rho + fx (left),
        # rho + 1 - fx (right), rho + fy (bottom), rho + 1 - fy (top). Only
        # the sides beyond which the grid still has cells count; if there is
        # none, every cell has been visited. The minimum over those sides is
        # >= rho: this is the classic ring bound (rho * h)**2, tightened by
        # the query's position inside its cell. _lb2 turns it into a bound b2
        # <= the computed d2 of every unvisited point, despite rounding, and
        # we stop when b2 > thr, i.e.
        #   * when the buffer is full and its k-th d2 < b2 STRICTLY: no
        #     unvisited point can be closer than the k-th, nor tie it (a tie
        #     could win on a smaller gid, so equality must go on); or
        #   * when b2 > qr2: every unvisited point is beyond the radius
        #     (which is inclusive).
        # A query clamped to +-_FAR is really farther from the grid than its
        # clamped position, so the bounds stay lower bounds, only looser.
        m = INFINITY
        if cx - rho > 0:
            m = rho + c.fx
        if cx + rho < gx - 1 and rho + 1 - c.fx < m:
            m = rho + 1 - c.fx
        if cy - rho > 0 and rho + c.fy < m:
            m = rho + c.fy
        if cy + rho < gy - 1 and rho + 1 - c.fy < m:
            m = rho + 1 - c.fy
        if m == INFINITY:
            break
        b2 = _lb2(&c, m, 0.0)
        if b2 > _thr(&c):
            break

        # Visit ring rho + 1, clipped to the grid; cells that cannot hold a
        # point that would enter the buffer (_lb2 > thr, the same test) are
        # skipped.
        rho += 1
        xlo = cx - rho if cx - rho > 0 else 0
        xhi = cx + rho if cx + rho < gx - 1 else gx - 1
        if xlo <= xhi:
            # Bottom and top rows of the ring: contiguous in cell order.
            if 0 <= cy - rho < gy:
                _scan_row(&c, g, cx, cy, cy - rho, xlo, xhi)
            if 0 <= cy + rho < gy:
                _scan_row(&c, g, cx, cy, cy + rho, xlo, xhi)
        # Left and right columns, without the corners.
        ylo = cy - rho + 1 if cy - rho + 1 > 0 else 0
        yhi = cy + rho - 1 if cy + rho - 1 < gy - 1 else gy - 1
        if 0 <= cx - rho < gx:
            for y in range(ylo, yhi + 1):
                _scan_row(&c, g, cx, cy, y, cx - rho, cx - rho)
        if 0 <= cx + rho < gx:
            for y in range(ylo, yhi + 1):
                _scan_row(&c, g, cx, cy, y, cx + rho, cx + rho)
    return c.n


def knn_grid(const double[:] px, const double[:] py, const int64_t[:] pgid,
             const double[:] qx, const double[:] qy, const int64_t[:] qgid,
             const double[:] qr2, int k,
             int64_t[:, ::1] out_idx, double[:, ::1] out_d2, int32_t[::1] out_count):
    """Exact k nearest neighbours of each query among the points.

    For query ``q`` the result is the up-to-``k`` points ``p`` with the
    smallest ``(d2, pgid[p])`` in lexicographic order, where
    ``d2 = dx*dx + dy*dy``, ``dx = qx[q] - px[p]``, ``dy = qy[q] - py[p]``
    (evaluated exactly so, without FMA), among the points with
    ``pgid[p] != qgid[q]`` and ``d2 <= qr2[q]``. Points that share a gid
    (not expected) are further ordered by index.

    Parameters
    ----------
    px, py : float64 arrays of length np
        Point positions (any finite doubles; duplicates allowed).
    pgid : int64 array of length np
        Global ids of the points, the tie-break after ``d2``.
    qx, qy : float64 arrays of length nq
        Query positions, possibly outside the points' bounding box.
    qgid : int64 array of length nq
        Global id of each query: points with this gid are excluded (the query
        itself when queries are points).
    qr2 : float64 array of length nq
        Squared search radius, inclusive; may be ``inf``.
    k : int
        Neighbours per query, >= 1.
    out_idx : int64 array, shape (nq, k), C-contiguous
        Receives the point indices, sorted by ``(d2, gid)``; ``-1`` pads.
    out_d2 : float64 array, shape (nq, k), C-contiguous
        Receives the squared distances; ``inf`` pads.
    out_count : int32 array of length nq
        Receives the number of neighbours found (<= k).

    Raises
    ------
    ValueError
        If ``k < 1`` or the array shapes disagree.
    MemoryError
        If the work arrays cannot be allocated.

    Notes
    -----
    A uniform grid over the points' bounding box with about two points per
    cell, and a ring search from each query's cell: ``O((np + nq) * k)`` on
    uniformly spread points. Runs without the GIL.
    """
    cdef Py_ssize_t npt = px.shape[0], nq = qx.shape[0]
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if py.shape[0] != npt or pgid.shape[0] != npt:
        raise ValueError("px, py and pgid must have the same length")
    if qy.shape[0] != nq or qgid.shape[0] != nq or qr2.shape[0] != nq:
        raise ValueError("qx, qy, qgid and qr2 must have the same length")
    if (out_idx.shape[0] != nq or out_idx.shape[1] != k or out_d2.shape[0] != nq
            or out_d2.shape[1] != k or out_count.shape[0] != nq):
        raise ValueError("out_idx and out_d2 must have shape (nq, k), out_count (nq,)")

    cdef Grid g
    cdef int rc = 0, n, j
    cdef int64_t q, c, ncell, t, t0, t1, r
    cdef Cand* buf = NULL
    cdef Query* qbuf = NULL
    cdef int32_t* res_n = NULL
    cdef double* res_d2 = NULL
    cdef int64_t* res_idx = NULL
    cdef int64_t* qstart = NULL
    cdef int64_t* order = NULL

    with nogil:
        if _build(&g, px, py, pgid, k) != 0:
            rc = -1
        else:
            ncell = g.gx * g.gy
            buf = <Cand*>malloc(k * sizeof(Cand))
            qbuf = <Query*>malloc(_CHUNK * sizeof(Query))
            res_n = <int32_t*>malloc(_CHUNK * sizeof(int32_t))
            res_d2 = <double*>malloc(_CHUNK * k * sizeof(double))
            res_idx = <int64_t*>malloc(_CHUNK * k * sizeof(int64_t))
            qstart = <int64_t*>malloc((ncell + 1) * sizeof(int64_t))
            order = <int64_t*>malloc((nq if nq > 0 else 1) * sizeof(int64_t))
            if (buf == NULL or qbuf == NULL or res_n == NULL or res_d2 == NULL
                    or res_idx == NULL or qstart == NULL or order == NULL):
                rc = -1
        if rc == 0:
            # Counting sort of the queries by (grid-clamped) cell, so that
            # consecutive queries read the same points from cache; the order
            # does not change the results.
            for c in range(ncell + 1):
                qstart[c] = 0
            for q in range(nq):
                qstart[_query_cell(&g, qx[q], qy[q]) + 1] += 1
            for c in range(ncell):
                qstart[c + 1] += qstart[c]
            for q in range(nq):
                c = _query_cell(&g, qx[q], qy[q])
                order[qstart[c]] = q
                qstart[c] += 1

            # By chunks of queries in that order: gather their inputs, search,
            # buffer the results, then write them to the caller's rows. The
            # gather and the scatter are tight loops, whose cache misses (if
            # the caller's queries are not in spatial order) overlap.
            t0 = 0
            while t0 < nq:
                t1 = t0 + _CHUNK if t0 + _CHUNK < nq else nq
                for t in range(t0, t1):
                    q = order[t]
                    qbuf[t - t0].x = qx[q]
                    qbuf[t - t0].y = qy[q]
                    qbuf[t - t0].r2 = qr2[q]
                    qbuf[t - t0].gid = qgid[q]
                for t in range(t1 - t0):
                    n = _query(&g, &qbuf[t], k, buf)
                    res_n[t] = n
                    for j in range(n):
                        res_d2[t * k + j] = buf[j].d2
                        res_idx[t * k + j] = g.si[buf[j].j]
                    for j in range(n, k):
                        res_d2[t * k + j] = INFINITY
                        res_idx[t * k + j] = -1
                for t in range(t0, t1):
                    q = order[t]
                    r = (t - t0) * k
                    for j in range(k):
                        out_idx[q, j] = res_idx[r + j]
                        out_d2[q, j] = res_d2[r + j]
                    out_count[q] = res_n[t - t0]
                t0 = t1
        _free_grid(&g)
        free(buf)
        free(qbuf)
        free(res_n)
        free(res_d2)
        free(res_idx)
        free(qstart)
        free(order)
    if rc != 0:
        raise MemoryError("knn_grid: cannot allocate work arrays")
