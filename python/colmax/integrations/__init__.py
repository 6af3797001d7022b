"""colmax inside RAG frameworks: ``colmax.integrations.langchain`` (extra ``colmax[langchain]``)
and ``colmax.integrations.llama_index`` (extra ``colmax[llama-index]``).

Each module imports its framework when it is imported itself, never before: ``import colmax``
and ``import colmax.integrations`` load no framework (docs/integrations.md).
"""
