"""The RAG dialog runtime each region serves. (Not yet built.)"""
