"""CDC through Kafka and vector-index snapshots through S3. (Not yet built.)"""
