"""pymongo against odm-embedded: insert, filtered and sorted reads, getMore, delete.

Usage: python3 pymongo_smoke.py mongodb://127.0.0.1:PORT/
"""
import sys

import pymongo


def main(uri: str) -> None:
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    coll = client["pymongo_smoke"]["items"]
    coll.drop()
    result = coll.insert_many([{"_id": i, "group": i % 3, "name": f"n{i}"} for i in range(50)])
    assert len(result.inserted_ids) == 50, result.inserted_ids

    cursor = coll.find({"group": 1}).sort("_id", pymongo.DESCENDING).batch_size(4)
    ids = [doc["_id"] for doc in cursor]
    expected = sorted((i for i in range(50) if i % 3 == 1), reverse=True)
    assert ids == expected, ids

    assert coll.find_one({"name": "n7"}) == {"_id": 7, "group": 1, "name": "n7"}
    assert coll.count_documents({"group": 0}) == 17

    coll.update_one({"_id": 7}, {"$set": {"name": "seven"}, "$inc": {"group": 10}})
    assert coll.find_one({"_id": 7}) == {"_id": 7, "group": 11, "name": "seven"}

    deleted = coll.delete_many({"group": {"$gte": 1}})
    assert deleted.deleted_count == 33, deleted.deleted_count
    assert coll.count_documents({}) == 17
    coll.drop()
    client.close()
    print("pymongo ok")


if __name__ == "__main__":
    main(sys.argv[1])
