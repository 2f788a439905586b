"""Documents: the seed's vector search (`semanticSearch`), on pgvector.

The seed asks an embeddings API for the query's vector. Here that is
`app.embeddings.embed`: an OpenAI-compatible API when a key is configured, or a local
model when `convect[embeddings]` is installed. Without either, pass `vector` yourself.
"""

from app.embeddings import embed
from app.server import action, api, mutation, query
from app.values import ConvexError, pagination_opts_validator, v


@mutation(args={"text": v.string(), "category": v.string(), "embedding": v.array(v.float64())})
async def add(ctx, args):
    """Store a document with its embedding (384 numbers)."""
    return await ctx.db.insert("documents", args)


@action(args={"text": v.string(), "category": v.string()})
async def add_text(ctx, args):
    """Embed a text with the configured provider and store it."""
    [vector] = await embed([args["text"]])
    return await ctx.run_mutation(api.documents.add, {**args, "embedding": vector})


@action(
    args={
        "query": v.string(),
        "vector": v.optional(v.array(v.float64())),
        "category": v.optional(v.string()),
        "limit": v.optional(v.number()),
    }
)
async def semanticSearch(ctx, args):
    """The documents nearest to the query: `[{"_id", "_score"}]`, most similar first."""
    vector = args.get("vector")
    if vector is None:
        try:
            [vector] = await embed([args["query"]])
        except RuntimeError as exc:
            raise ConvexError(str(exc)) from None
    search = {"vector": vector, "limit": int(args.get("limit", 10))}
    if "category" in args:
        search["filter"] = lambda q: q.eq("category", args["category"])
    return await ctx.vector_search("documents", "by_embedding", search)


@query(args={"ids": v.array(v.id("documents"))})
async def get_many(ctx, args):
    """Documents by id, in the order given (without their embeddings)."""
    docs = [await ctx.db.get(doc_id) for doc_id in args["ids"]]
    return [{k: x for k, x in d.items() if k != "embedding"} for d in docs if d is not None]


@action(args={"query": v.string(), "vector": v.optional(v.array(v.float64()))})
async def search(ctx, args):
    """`semanticSearch`, then the documents themselves with their scores."""
    hits = await ctx.run_action(api.documents.semanticSearch, args)
    docs = await ctx.run_query(api.documents.get_many, {"ids": [h["_id"] for h in hits]})
    scores = {h["_id"]: h["_score"] for h in hits}
    return [{**d, "_score": scores[d["_id"]]} for d in docs]


@query(args={"paginationOpts": pagination_opts_validator, "category": v.optional(v.string())})
async def page(ctx, args):
    """Newest documents first, a page at a time (`usePaginatedQuery`)."""
    q = ctx.db.query("documents")
    if "category" in args:
        q = q.filter(lambda f: f.eq(f.field("category"), args["category"]))
    result = await q.order("desc").paginate(args["paginationOpts"])
    result["page"] = [{k: x for k, x in d.items() if k != "embedding"} for d in result["page"]]
    return result
