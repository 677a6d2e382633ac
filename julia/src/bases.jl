# Bases of L2([0, t1]) for depth-variant weights theta(t) = sum_k theta_k phi_k(t): the truncated
# spectral and piecewise-constant bases of Massaroli et al. 2020 ("Dissecting Neural ODEs", §3),
# with the torch backend's definitions (pyanode/torch/_bases.py) term for term.

"""
    AbstractBasis

K functions phi_0 ... phi_{K-1} on [0, t1]. Every basis has [`n_terms`](@ref),
[`n_active`](@ref) (how many phi_k are nonzero at a time: the coefficients start with scale
`1 / sqrt(in_dims * n_active)`), [`jump_times`](@ref) (where the functions jump) and
[`basis_values`](@ref).
"""
abstract type AbstractBasis end

"""
    ChebyshevBasis(degree, t1)

Chebyshev polynomials of the first kind T_0 ... T_degree, with [0, t1] mapped onto [-1, 1]
(`s = 2 t / t1 - 1`): `degree + 1` terms, orthogonal under the weight `1 / sqrt(1 - s^2)`.
"""
struct ChebyshevBasis <: AbstractBasis
    degree::Int
    t1::Float64
end

"""
    FourierBasis(degree, t1)

The Fourier series `[1, cos(2 pi t / t1), sin(2 pi t / t1), ..., cos(2 pi degree t / t1),
sin(2 pi degree t / t1)]`: `2 degree + 1` terms, orthogonal on [0, t1] with squared norms t1
(the constant) and t1 / 2 (the others).
"""
struct FourierBasis <: AbstractBasis
    degree::Int
    t1::Float64
end

"""
    PiecewiseConstantBasis(n_pieces, t1)

Indicators of `n_pieces` equal pieces of [0, t1]: phi_k = 1 on [k t1 / K, (k + 1) t1 / K)
(the last piece also holds t1), so theta(t) = theta_k on piece k: a stacked net of K NODE
blocks. A time exactly on a break point belongs to the next piece, as in the torch backend.
"""
struct PiecewiseConstantBasis <: AbstractBasis
    n_pieces::Int
    t1::Float64
end

"""
    n_terms(basis) -> Int

K, the number of basis functions (coefficients per weight).
"""
n_terms(b::ChebyshevBasis) = b.degree + 1
n_terms(b::FourierBasis) = 2 * b.degree + 1
n_terms(b::PiecewiseConstantBasis) = b.n_pieces

"""
    n_active(basis) -> Int

How many basis functions are nonzero at a time t: all of a spectral basis, one piece.
"""
n_active(b::AbstractBasis) = n_terms(b)
n_active(::PiecewiseConstantBasis) = 1

"""
    jump_times(basis) -> Vector{Float64}

The interior break points `k t1 / K` where a piecewise-constant basis jumps; empty for the
smooth bases.
"""
jump_times(::AbstractBasis) = Float64[]
jump_times(b::PiecewiseConstantBasis) = [k * b.t1 / b.n_pieces for k in 1:(b.n_pieces - 1)]

"""
    chebyshev_values(s, n) -> Vector{Float64}

T_0(s) ... T_{n-1}(s) by the recurrence T_{k+1} = 2 s T_k - T_{k-1}.
"""
function chebyshev_values(s::Float64, n::Integer)
    values = Vector{Float64}(undef, n)
    for k in 1:n
        values[k] = k == 1 ? 1.0 : k == 2 ? s : 2 * s * values[k - 1] - values[k - 2]
    end
    return values
end

"""
    fourier_values(t, degree, t1) -> Vector{Float64}

`[1, cos(2 pi t / t1), sin(2 pi t / t1), cos(4 pi t / t1), ...]` up to harmonic `degree`.
"""
function fourier_values(t::Float64, degree::Integer, t1::Float64)
    values = Vector{Float64}(undef, 2 * degree + 1)
    values[1] = 1.0
    for k in 1:degree
        angle = (2 * pi * k / t1) * t
        values[2k] = cos(angle)
        values[2k + 1] = sin(angle)
    end
    return values
end

"""
    piece_index(t, breaks) -> Int

The 1-based piece holding time `t`: one plus the number of break points `<= t`, with the break
points rounded to `t`'s floating-point type (as the solver rounds them), so that `t` on a break
point is the next piece.
"""
function piece_index(t::Real, breaks::AbstractVector{<:Real})
    time = float(t)
    return 1 + count(b -> oftype(time, b) <= time, breaks)
end

"""
    indicator(n, k) -> Vector{Float64}

The k-th unit vector of length n: the piecewise-constant basis on piece k.
"""
indicator(n::Integer, k::Integer) = [i == k ? 1.0 : 0.0 for i in 1:n]

"""
    basis_values(basis, t) -> Vector{Float32}

phi_0(t) ... phi_{K-1}(t), computed in Float64 and returned in Float32 (the weights' type), as
the torch backend does.
"""
function basis_values(b::ChebyshevBasis, t::Real)
    return Float32.(chebyshev_values(2 * Float64(t) / b.t1 - 1, n_terms(b)))
end
function basis_values(b::FourierBasis, t::Real)
    return Float32.(fourier_values(Float64(t), b.degree, b.t1))
end
function basis_values(b::PiecewiseConstantBasis, t::Real)
    return Float32.(indicator(b.n_pieces, piece_index(t, jump_times(b))))
end

"""
    basis_on_piece(basis, t, piece) -> Vector{Float32}

The basis values inside the solve of `piece` (see [`piece_bounds`](@ref)): those at t for a
smooth basis (one piece), the indicator of `piece` for a piecewise-constant one. Each piece is
solved on its own, so the field never has to guess its piece from a stage time that lands on a
break point.
"""
basis_on_piece(b::AbstractBasis, t::Real, ::Integer) = basis_values(b, t)
function basis_on_piece(b::PiecewiseConstantBasis, ::Real, piece::Integer)
    return Float32.(indicator(b.n_pieces, piece))
end
